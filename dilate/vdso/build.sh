#!/bin/sh
# Rebuild the replacement vDSO image reproducibly with Debian's gcc:
#   dilate/vdso/build.sh [OUT]   (default: vdso.so beside this script)
# The flags keep it a libc-free, TLS-free, relocation-free PIC shared
# object that glibc's and Go's vDSO parsers accept; build ids, notes and
# the compiler's .comment are dropped so the bytes depend only on the
# source and the gcc/binutils version. The file is padded to IMAGE_SIZE.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
out=${1:-$dir/vdso.so}
size=8192
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$dir/csrc"
${CC:-gcc} -std=gnu11 -O2 -fPIC -nostdlib -shared \
	-fno-stack-protector -fno-stack-clash-protection -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-ident \
	-ffreestanding -fno-builtin -fvisibility=default -mno-red-zone \
	-Wall -Wextra -Werror -Wno-unused-parameter \
	-Wl,-soname=linux-vdso.so.1 -Wl,--hash-style=both -Wl,--build-id=none \
	-Wl,--version-script=vdso.ver -Wl,-T,vdso.lds -Wl,-z,max-page-size=4096 \
	-Wl,-z,norelro -Wl,--no-undefined \
	-o "$tmp/vdso.so" vdso.c
n=$(wc -c <"$tmp/vdso.so")
if [ "$n" -gt "$size" ]; then
	echo "build.sh: image is $n bytes, more than $size: raise IMAGE_SIZE in vdso.lds, build.sh and layout.go" >&2
	exit 1
fi
truncate -s "$size" "$tmp/vdso.so"
mv "$tmp/vdso.so" "$out"
