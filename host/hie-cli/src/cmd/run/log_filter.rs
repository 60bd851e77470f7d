//! The log filter of `hie run`: a base filter (`RUST_LOG`, else `[log] level`,
//! else `info`) and `[log.items]`, one level per item that makes that item's
//! lines louder *or quieter* than the base.
//!
//! An event belongs to an item when it carries an `item` field naming it, or when
//! it happens inside a span that does (the engine's `message{item=...}` span and
//! the worker spans). `EnvFilter` span directives can only make lines louder, so
//! the per-item levels are applied here: callsites up to the loudest level in use
//! are let through the cheap metadata check, and the decision is made per event
//! from the event's own `item` field or the nearest span that names an item.

use std::collections::BTreeMap;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The base filter plus one level per item.
pub struct ItemLevels {
    base: EnvFilter,
    items: BTreeMap<String, LevelFilter>,
    /// The loudest of the item levels.
    loudest: LevelFilter,
}

/// Stored in a span's extensions: the level of the item the span names.
struct SpanItemLevel(LevelFilter);

impl ItemLevels {
    /// `base` for everything, `items` (item name → level) for each item's lines.
    pub fn new(base: EnvFilter, items: BTreeMap<String, LevelFilter>) -> Self {
        let loudest = items.values().copied().max().unwrap_or(LevelFilter::OFF);
        ItemLevels { base, items, loudest }
    }

    /// Whether `meta` may be enabled by some item level (so the base filter alone cannot decide).
    fn maybe_for_an_item(&self, meta: &Metadata<'_>) -> bool {
        !self.items.is_empty() && *meta.level() <= self.loudest
    }

    /// The level of the item `fields` name, if they name one with a level.
    fn level_named_by(&self, record: impl FnOnce(&mut ItemField)) -> Option<LevelFilter> {
        let mut visitor = ItemField(None);
        record(&mut visitor);
        visitor.0.and_then(|name| self.items.get(&name).copied())
    }
}

/// Finds the `item` field's value.
struct ItemField(Option<String>);

impl Visit for ItemField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "item" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "item" {
            // `item = %name` arrives as a Display wrapper whose Debug is the plain name;
            // `item = ?name` of a string arrives quoted
            let text = format!("{value:?}");
            let text = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .map(str::to_string)
                .unwrap_or(text);
            self.0 = Some(text);
        }
    }
}

impl<S> Layer<S> for ItemLevels
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let base = Layer::<S>::register_callsite(&self.base, meta);
        if self.maybe_for_an_item(meta) && !base.is_always() {
            Interest::sometimes()
        } else {
            base
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let base = Layer::<S>::max_level_hint(&self.base);
        if self.items.is_empty() {
            return base;
        }
        Some(base.map_or(LevelFilter::TRACE, |b| b.max(self.loudest)))
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        // spans up to the loudest item level exist, so events inside them can be
        // judged by their item; events get their final answer in `event_enabled`
        self.maybe_for_an_item(meta) || Layer::<S>::enabled(&self.base, meta, ctx)
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        if self.items.is_empty() {
            return Layer::<S>::event_enabled(&self.base, event, ctx);
        }
        let meta = event.metadata();
        let item_level = self.level_named_by(|v| event.record(v)).or_else(|| {
            let span = ctx.event_span(event)?;
            span.scope()
                .find_map(|s| s.extensions().get::<SpanItemLevel>().map(|l| l.0))
        });
        match item_level {
            Some(level) => *meta.level() <= level,
            None => {
                Layer::<S>::enabled(&self.base, meta, ctx.clone())
                    && Layer::<S>::event_enabled(&self.base, event, ctx)
            }
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if !self.items.is_empty()
            && let Some(level) = self.level_named_by(|v| attrs.record(v))
            && let Some(span) = ctx.span(id)
        {
            span.extensions_mut().insert(SpanItemLevel(level));
        }
        Layer::<S>::on_new_span(&self.base, attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        Layer::<S>::on_record(&self.base, id, values, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_enter(&self.base, id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_exit(&self.base, id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_close(&self.base, id, ctx);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Run `f` under a subscriber with `base` and `items`; the lines it logged.
    fn logged(base: &str, items: &[(&str, LevelFilter)], f: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let items = items.iter().map(|(n, l)| (n.to_string(), *l)).collect();
        let subscriber = tracing_subscriber::registry()
            .with(ItemLevels::new(EnvFilter::new(base), items))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .without_time()
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn traffic() {
        for item in ["router", "pas"] {
            let span = tracing::debug_span!("message", item = %item, message_id = 7);
            let _in = span.enter();
            tracing::trace!("trace in span");
            tracing::debug!("debug in span");
            tracing::info!("info in span");
            tracing::warn!("warn in span");
        }
        tracing::debug!(item = "router", "debug with field");
        tracing::info!(item = %"pas", "info with field");
        tracing::info!("info of no item");
        tracing::debug!("debug of no item");
    }

    fn has(lines: &[String], item: &str, what: &str) -> bool {
        lines
            .iter()
            .any(|l| l.contains(&format!("item={item}")) && l.contains(what))
    }

    #[test]
    fn an_item_can_be_quieter_than_the_rest() {
        let lines = logged("debug", &[("router", LevelFilter::WARN)], traffic);
        assert!(has(&lines, "router", "warn in span"), "{lines:#?}");
        assert!(!has(&lines, "router", "info in span"), "{lines:#?}");
        assert!(!has(&lines, "router", "debug in span"), "{lines:#?}");
        assert!(
            !lines.iter().any(|l| l.contains("debug with field")),
            "{lines:#?}"
        );
        assert!(has(&lines, "pas", "debug in span"), "{lines:#?}");
        assert!(!has(&lines, "pas", "trace in span"), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("debug of no item")), "{lines:#?}");
    }

    #[test]
    fn an_item_can_be_louder_than_the_rest() {
        let lines = logged("warn", &[("router", LevelFilter::TRACE)], traffic);
        for what in ["trace in span", "debug in span", "info in span", "warn in span"] {
            assert!(has(&lines, "router", what), "{what}: {lines:#?}");
        }
        assert!(lines.iter().any(|l| l.contains("debug with field")), "{lines:#?}");
        assert!(has(&lines, "pas", "warn in span"), "{lines:#?}");
        assert!(!has(&lines, "pas", "info in span"), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("info with field")), "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("of no item")), "{lines:#?}");
    }

    #[test]
    fn without_item_levels_the_base_decides() {
        let lines = logged("info", &[], traffic);
        // the spans are at debug level, so they are off and the lines carry no span
        let in_span = lines.iter().filter(|l| l.contains("info in span")).count();
        assert_eq!(in_span, 2, "{lines:#?}");
        assert!(!lines.iter().any(|l| l.contains("debug")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("info of no item")), "{lines:#?}");
    }
}
