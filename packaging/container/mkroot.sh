#!/bin/bash
# Assembles a minimal root filesystem for an image made offline: each binary given and the
# shared libraries `ldd` lists for it, at their own absolute paths, plus /tmp and an /etc
# with a passwd, group and hostname. Nothing is pulled; the tree is `docker import`ed or a
# Containerfile's build context.
#
# Usage: packaging/container/mkroot.sh DEST BINARY:PATH-IN-ROOT...
set -euo pipefail
DEST=$1; shift
mkdir -p "$DEST"/{etc,tmp,usr/bin,var/lib,run}
chmod 1777 "$DEST/tmp"
printf 'root:x:0:0:root:/:/nonexistent\nnobody:x:65534:65534:nobody:/:/nonexistent\n' >"$DEST/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$DEST/etc/group"
for spec in "$@"; do
    bin=${spec%%:*}; target=${spec#*:}
    mkdir -p "$DEST$(dirname "$target")"
    cp -L "$bin" "$DEST$target"
    # The loader and every library, resolved, at the path the binary asks for it by.
    for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'); do
        mkdir -p "$DEST$(dirname "$lib")"
        [ -e "$DEST$lib" ] || cp -L "$lib" "$DEST$lib"
    done
done
