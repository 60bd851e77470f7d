//! `benches/REPORT.md` and its plot, written from the JSON lines of a real run of the
//! e2e bench. Nothing here measures; it only lays out what the rows say.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The machine the run is on, read from `/proc` and `uname`.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    serde_json::json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": kernel,
    })
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS UTC` (from `date`).
pub fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// `git describe`-like name of the checkout the bench runs from (`abc1234`, `+dirty`).
pub fn commit(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // the report and plot this run writes do not make the checkout count as changed
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!benches/REPORT.md",
        ":!benches/e2e-connections.png",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+uncommitted changes")
    } else {
        head
    }
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.digits$}"))
}

/// `12345.6` as `12,346`.
pub fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Sizes in binary units (1 KB = 1,024 bytes, 1 MB = 1,048,576), as the bench makes them.
fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MB", bytes >> 20)
    } else if bytes >= 1 << 10 {
        format!("{} KB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// The scenario table in Markdown.
pub fn table(rows: &[Value]) -> String {
    let mut t = String::from(
        "| scenario | system | route | store | execution | size | conns | window | messages | msg/s | ACK p50 ms | ACK p99 ms | ACK max ms | CPU s / 1,000 msgs | peak RSS MiB | store B / msg | all delivered |\n\
         |---|---|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for r in rows {
        let store = if r.get("persistence").and_then(Value::as_bool) == Some(true) {
            "sqlite"
        } else {
            "none"
        };
        let window = if s(r, "load") == "paced" {
            format!("paced {}/s", thousands(f(r, "target_msgs_per_s").unwrap_or(0.0)))
        } else {
            u(r, "window").to_string()
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s(r, "scenario"),
            s(r, "system"),
            s(r, "production"),
            if s(r, "system") == "hie" { store } else { "–" },
            if s(r, "system") == "hie" {
                s(r, "execution")
            } else {
                "asyncio"
            },
            size_label(u(r, "message_bytes")),
            u(r, "connections"),
            window,
            u(r, "messages"),
            thousands(f(r, "msgs_per_s").unwrap_or(0.0)),
            num(f(r, "ack_p50_ms"), 2),
            num(f(r, "ack_p99_ms"), 2),
            num(f(r, "ack_max_ms"), 1),
            num(f(r, "cpu_s_per_1000_msgs"), 3),
            num(f(r, "peak_rss_kib").map(|k| k / 1024.0), 1),
            if s(r, "system") == "hie" && store == "sqlite" {
                num(f(r, "store_bytes_per_msg"), 0)
            } else {
                "–".into()
            },
            if r.get("complete").and_then(Value::as_bool) == Some(true) {
                "yes"
            } else {
                "**no**"
            },
        );
    }
    t
}

/// A row by scenario name.
pub fn row<'a>(rows: &'a [Value], scenario: &str) -> Option<&'a Value> {
    rows.iter().find(|r| s(r, "scenario") == scenario)
}

/// One plotted series: label, points (connections, msg/s, p99 ms).
pub type Series = (String, Vec<(u64, f64, f64)>);

/// The series of throughput and ACK p99 against connections: every row of `system`
/// and `production`, `persistence`, 1 KB, window 1, all-out load.
pub fn connection_series(
    rows: &[Value],
    label: &str,
    system: &str,
    production: &str,
    persistence: bool,
) -> Series {
    let mut points: Vec<(u64, f64, f64)> = rows
        .iter()
        .filter(|r| {
            s(r, "system") == system
                && s(r, "production") == production
                && r.get("persistence").and_then(Value::as_bool).unwrap_or(false) == persistence
                && s(r, "load") == "send"
                && u(r, "window") == 1
                && u(r, "message_bytes") == 1024
                && (system != "hie" || s(r, "execution") == "thread_pool")
        })
        .map(|r| {
            (
                u(r, "connections"),
                f(r, "msgs_per_s").unwrap_or(0.0),
                f(r, "ack_p99_ms").unwrap_or(0.0),
            )
        })
        .collect();
    points.sort_by_key(|p| p.0);
    (label.to_string(), points)
}

/// Where the plot's text font comes from.
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Draw throughput (left) and ACK p99 (right) against connections into `png`.
/// An error says what is missing (the font file, a writable path).
pub fn plot(series: &[Series], png: &Path) -> Result<(), String> {
    use plotters::prelude::*;

    let font = std::fs::read(FONT).map_err(|e| {
        format!("cannot read the font {FONT} ({e}): install it with apt-get install fonts-dejavu-core")
    })?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| format!("{FONT} is not a font plotters can read"))?;

    let root = BitMapBackend::new(png, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(600);
    let conns = |p: &(u64, f64, f64)| (p.0 as f64).log2();
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(conns))
        .fold(6.0_f64, f64::max);
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    type Pick = fn(&(u64, f64, f64)) -> f64;
    let panels: [(&str, &str, Pick, &DrawingArea<BitMapBackend<'_>, _>); 2] = [
        ("throughput, 1 KB ADT, window 1", "msg/s (log)", |p| p.1, &left),
        ("ACK latency p99, window 1", "ms (log)", |p| p.2, &right),
    ];
    for (title, y_label, pick, area) in panels {
        let values: Vec<f64> = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(pick))
            .filter(|v| *v > 0.0)
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min).min(1e9) / 2.0;
        let hi = values.iter().copied().fold(1.0_f64, f64::max) * 2.0;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.3..max_x + 0.3, (lo..hi).log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("connections (log2)")
            .y_desc(y_label)
            .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
            .y_label_formatter(&|y| {
                if *y >= 10.0 {
                    thousands(*y)
                } else {
                    format!("{y:.1}")
                }
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            let xy: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (conns(p), pick(p)))
                .filter(|(_, y)| *y > 0.0)
                .collect();
            chart
                .draw_series(LineSeries::new(xy.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(xy.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present()
        .map_err(|e| format!("cannot write {}: {e}", png.display()))?;
    Ok(())
}

/// The text between `<!-- notes -->` and `<!-- /notes -->` of an earlier report, kept
/// across regenerations: the profile's findings are written by hand.
pub fn kept_notes(old_report: &str) -> Option<String> {
    let start = old_report.find("<!-- notes -->")? + "<!-- notes -->".len();
    let end = old_report[start..].find("<!-- /notes -->")? + start;
    Some(old_report[start..end].trim_matches('\n').to_string())
}
