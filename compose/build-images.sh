#!/usr/bin/env bash
# Builds the two images, eddy/coord:local and eddy/broker:local, without any
# registry: FROM scratch + our stripped release binaries + exactly the shared
# libraries `ldd` says they load (glibc, libm, libgcc_s and the dynamic loader,
# copied from this machine to the same paths) + a static entrypoint that
# hands the data directories to 65532:65532 and drops to that user.
#
#   cargo build --release -p broker -p coordinator
#   compose/build-images.sh            # stage compose/image/stage/ and build both images
#   compose/build-images.sh --stage    # only stage (then `docker compose ... build` works)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
release="${CARGO_TARGET_DIR:-$root/target}/release"
ctx="$here/image/stage"
stage_only=0
[ "${1:-}" = "--stage" ] && stage_only=1

for bin in broker coord; do
    if [ ! -x "$release/$bin" ]; then
        echo "build-images: $release/$bin is missing; run: cargo build --release -p broker -p coordinator" >&2
        exit 1
    fi
done

rm -rf "$ctx"
mkdir -p "$ctx/bin" "$ctx/rootfs/etc" "$ctx/empty"

# The binaries, without their debug info (the release profile keeps some).
for bin in broker coord; do
    strip --strip-all -o "$ctx/bin/$bin" "$release/$bin"
done

# The entrypoint: static, so it needs nothing from the image.
${CC:-cc} -static -Os -Wall -Wextra -o "$ctx/bin/eddy-entrypoint" "$here/image/entrypoint.c"
strip "$ctx/bin/eddy-entrypoint"

# Every shared object the binaries load, and the loader, at the same path.
libs="$(for bin in broker coord; do ldd "$release/$bin"; done |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)"
for lib in $libs; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done

# Name lookups: /etc/hosts (Docker writes it) then DNS (Docker's resolver);
# glibc >= 2.34 has both built in, no libnss_* needed. A passwd/group entry
# names the user the programs run as.
printf 'hosts: files dns\n' >"$ctx/rootfs/etc/nsswitch.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\neddy:x:65532:65532:eddy:/nonexistent:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\neddy:x:65532:\n' >"$ctx/rootfs/etc/group"
mkdir -p "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"

echo "build-images: staged $ctx ($(du -sh "$ctx" | cut -f1)): libraries $(echo $libs)"
[ "$stage_only" = 1 ] && exit 0

for target in coord broker; do
    docker build -q -f "$here/image/Dockerfile" --target "$target" -t "eddy/$target:local" "$here/image" >/dev/null
done
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^eddy/' | sed 's/^/build-images: /'
