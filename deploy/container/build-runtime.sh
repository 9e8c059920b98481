#!/usr/bin/env bash
# Builds proxyd and proxyctl for the container image and assembles the runtime's file tree in
# OUT: the two binaries (release, the Swift standard library linked in statically), the shared
# libraries they still load (libnftables and its own, glibc, the loader) copied from this
# machine with their paths, and the example policy. The Containerfile copies OUT onto a slim
# Debian; the tests run this script and the binaries inside OUT with chroot.
#
# Usage: deploy/container/build-runtime.sh OUT [SCRATCH]
#   SCRATCH: the build directory (default .build-container, kept for incremental builds)
set -euo pipefail

out=${1:?usage: build-runtime.sh OUT [SCRATCH]}
scratch=${2:-.build-container}
cd "$(dirname "$0")/../.."

flags=(-c release --static-swift-stdlib --scratch-path "$scratch")
swift build "${flags[@]}" --product proxyd
swift build "${flags[@]}" --product proxyctl
bin=$(swift build "${flags[@]}" --show-bin-path)

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ringfence" "$out/run/ringfence" "$out/tmp" "$out/proc"
chmod 1777 "$out/tmp"
# Stripped: the symbol tables are a quarter of a statically linked Swift binary's size.
install -s -m 0755 "$bin/proxyd" "$bin/proxyctl" "$out/usr/local/bin/"
install -m 0644 policy.example.toml "$out/etc/ringfence/policy.toml"

# Every shared library the binaries load, and the dynamic loader, as ldd resolves them here.
libs=$(for binary in proxyd proxyctl; do ldd "$out/usr/local/bin/$binary"; done \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u)
for lib in $libs; do
    mkdir -p "$out$(dirname "$lib")"
    cp -L "$lib" "$out$lib"
done
# Debian's loader path is /lib64/ld-linux-x86-64.so.2 → /lib/x86_64-linux-gnu/…: both resolve.
echo "runtime tree in $out:"
find "$out" -type f | sort | sed "s|^$out||"
