#!/usr/bin/env bash
# Builds ckpool (ckolivas' C stratum pool) from its public source for the
# side-by-side baseline of `make bench` (issue 11). ckpool's code never
# enters this repository: it is unpacked from a local git mirror into
# $CKPOOL_SRC (outside the repo) and built there.
#
#   CKPOOL_GIT=/work/.mirror/ctubio+ckpool/repo/.git \
#   CKPOOL_SRC=/work/peers/ckpool-bench bench/ckpool/build.sh
#
# CKPOOL_GIT  bare git dir of a ckpool mirror (github:ckolivas/ckpool or its
#             mirror github:ctubio/ckpool); used only when $CKPOOL_SRC has no
#             source yet. CKPOOL_REV picks the revision (default HEAD).
# CKPOOL_SRC  where the source is unpacked and built (required, must not be
#             inside this repository). The binary is $CKPOOL_SRC/src/ckpool.
# APT=1       install the Debian build packages first (needs root):
#             build-essential autoconf automake libtool pkgconf yasm libzmq3-dev
set -euo pipefail

: "${CKPOOL_SRC:?set CKPOOL_SRC to a directory outside the repository}"
repo=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
src=$(realpath -m "$CKPOOL_SRC")
case "$src/" in
"$repo"/*) echo "build.sh: CKPOOL_SRC=$src is inside the repository $repo: refused" >&2; exit 2 ;;
esac

pkgs=(build-essential autoconf automake libtool pkgconf yasm libzmq3-dev)
if [[ "${APT:-0}" == 1 ]]; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}"
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "build.sh: missing Debian packages: ${missing[*]} (rerun with APT=1 as root)" >&2
	exit 1
fi

if [[ ! -f "$src/configure.ac" ]]; then
	: "${CKPOOL_GIT:?set CKPOOL_GIT to a ckpool git dir (e.g. /work/.mirror/ctubio+ckpool/repo/.git)}"
	mkdir -p "$src"
	git --git-dir="$CKPOOL_GIT" archive "${CKPOOL_REV:-HEAD}" | tar -x -C "$src"
	git --git-dir="$CKPOOL_GIT" rev-parse "${CKPOOL_REV:-HEAD}" >"$src/.ckpool-rev"
fi

cd "$src"
if [[ ! -x src/ckpool ]]; then
	[[ -x configure ]] || ./autogen.sh
	# -fcommon: ckpool.h defines global_ckp in every object (GCC ≥ 10
	# defaults to -fno-common and the link fails without it).
	[[ -f Makefile ]] || ./configure --without-ckdb CFLAGS="-g -O2 -fcommon"
	make -j"$(nproc)"
fi
echo "$src/src/ckpool"
