#!/usr/bin/env bash
# Sets up everything HIE needs on a Debian machine with the Rust toolchain, and is
# safe to run again: the wasm32-wasip2 target, Debian packages, the standard
# plugins (installed to ~/.local/share/hie/plugins) and the `hie` binary
# (installed to ~/.cargo/bin by `cargo install`).
#
# Environment:
#   CARGO_TARGET_DIR   build cache (default: ~/.cache/hie-target, outside the clone
#                      so rebuilds stay incremental)
#   HIE_PLUGIN_DIR     where the standard plugins go (default: ~/.local/share/hie/plugins)
#   HIE_INSTALL_DEBUG  1 installs a debug-profile `hie` that shares the test build's
#                      artifacts (the default when CI=true); 0 forces a release build
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hie-target}"
plugin_dir="${HIE_PLUGIN_DIR:-$HOME/.local/share/hie/plugins}"
if [ "${CI:-}" = "true" ]; then default_debug=1; else default_debug=0; fi
install_debug="${HIE_INSTALL_DEBUG:-$default_debug}"

step() { printf '\n==> %s\n' "$*" >&2; }
fail() { printf 'setup.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo not found: install the Rust toolchain with rustup first (https://rustup.rs)"

step "[1/4] rust target wasm32-wasip2 (plugins compile to it)"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2 ||
    fail "could not add the wasm32-wasip2 target: check that rustup can reach its download server, then run ./setup.sh again"
fi

step "[2/4] debian packages"
# gcc builds the bundled C code of some crates; python3 runs the MLLP interop tests
# against an independent client (the tests install the 'hl7' package in a venv).
missing=()
command -v cc >/dev/null || missing+=(gcc)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
command -v pkg-config >/dev/null || missing+=(pkg-config)
# the e2e bench draws its plot (benches/REPORT.md) with this font, read at run time
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${missing[@]}" ||
    fail "could not install ${missing[*]} with apt-get: install them by hand and run ./setup.sh again"
else
  echo "all present"
fi

step "[3/4] standard plugins -> $plugin_dir"
plugins_target="$CARGO_TARGET_DIR/plugins"
standard=(passthrough hl7-router hl7-mapper)
pkg_args=(); for p in "${standard[@]}"; do pkg_args+=(-p "$p"); done
CARGO_TARGET_DIR="$plugins_target" cargo build --release --target wasm32-wasip2 \
  --manifest-path plugins/Cargo.toml "${pkg_args[@]}"
mkdir -p "$plugin_dir"
for p in "${standard[@]}"; do
  f="$plugins_target/wasm32-wasip2/release/${p//-/_}.wasm"
  [ -f "$f" ] || fail "plugin $p was built but $f is missing"
  install -m 0644 "$f" "$plugin_dir/"
  echo "installed $plugin_dir/$(basename "$f")"
done

step "[4/4] the hie binary -> $(dirname "$(command -v cargo)")"
if [ "$install_debug" = "1" ]; then
  cargo install --locked --debug --path host/hie-cli --force --quiet
else
  cargo install --locked --path host/hie-cli --force --quiet
fi
hie --version || fail "hie was installed but is not on the PATH: add ~/.cargo/bin to PATH"

step "done"
echo "run the demo:   hie run productions/adt-demo   (see productions/adt-demo/README.md)"
echo "run the tests:  cargo test --workspace"
