#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (wstest, PyPI autobahntestsuite) into
# autobahn/.prefix, without Docker and without changing the system's packages.
#
# wstest runs only on Python 2.7, which Debian 12 no longer has. Debian 11
# (bullseye) does, and the mirror named in the machine's apt sources serves
# it too. So: fetch the bullseye python2.7 packages with a private apt state,
# unpack them with `dpkg -x` into the prefix, bootstrap pip, and install the
# pinned tree from requirements-py27.txt. autobahn/wstest runs the result.
#
# Idempotent: a stamp written last records a fingerprint of this script and
# the pins; if it matches and wstest imports, the script exits at once.
# Downloads are kept in autobahn/.cache. Verbose output goes to
# autobahn/.cache/install.log.
set -euo pipefail

# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

CACHE=$AUTOBAHN_DIR/.cache
LOG=$CACHE/install.log
REQS=$AUTOBAHN_DIR/requirements-py27.txt
SUITE=bullseye
DEBS=(python2.7 python2.7-minimal libpython2.7 libpython2.7-minimal
	libpython2.7-stdlib libpython2.7-dev python2.7-dev libssl1.1 libffi7)

fingerprint=$(cat "${BASH_SOURCE[0]}" "$REQS" | sha256sum | cut -c1-16)

is_installed() {
	[[ -f $WSTEST_STAMP && $(<"$WSTEST_STAMP") == "$fingerprint" ]] || return 1
	(
		py27_env "$WSTEST_PREFIX"
		"$WSTEST_PY" -c 'import autobahntestsuite.wstest, wsaccel.xormask'
	) >/dev/null 2>&1
}

if is_installed; then
	echo "install.sh: wstest is installed ($WSTEST_PREFIX)"
	exit 0
fi

mkdir -p "$CACHE"
# Two concurrent runs would unpack over each other.
exec 9>"$CACHE/install.lock"
flock 9
if is_installed; then
	echo "install.sh: wstest is installed ($WSTEST_PREFIX)"
	exit 0
fi

: >"$LOG"
started=$SECONDS
step() { echo "install.sh: [$((SECONDS - started))s] $*"; }
on_error() {
	echo "install.sh: FAILED; last lines of $LOG:" >&2
	tail -n 40 "$LOG" >&2 || true
}
set -E
trap on_error ERR

if [[ $(dpkg --print-architecture) != amd64 ]]; then
	echo "install.sh: only amd64 is supported" >&2
	exit 1
fi

# --- System packages (from the machine's own suite) ---------------------
# Runtime libraries the bullseye python2.7 links against that bookworm ships
# under the same names, a compiler for wsaccel, python3's pip to fetch the
# Python 2 bootstrap wheels, and ss for run.sh's port checks.
sys_pkgs=(ca-certificates gcc libc6-dev iproute2 zlib1g libexpat1 libbz2-1.0
	libcrypt1 libsqlite3-0 libreadline8 libncursesw6 libtinfo6 libdb5.3
	libnsl2 libtirpc3 media-types)
missing=()
for p in "${sys_pkgs[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
		missing+=("$p")
	fi
done
command -v python3 >/dev/null || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if ((${#missing[@]})); then
	step "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >>"$LOG" 2>&1
	apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1
fi

# --- Python 2.7 from bullseye, with a private apt state --------------------
# Prints "URI KEYRING" of the stanza serving bookworm (not -security/-updates
# only) in the machine's deb822 sources, or of a one-line sources.list entry.
debian_mirror() {
	local f=/etc/apt/sources.list.d/debian.sources
	if [[ -f $f ]]; then
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; key = ""
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^Types:/)     { sub(/^Types:[ \t]*/, "", line);     types  = " " line " " }
				if (line ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", line);      uris   = line }
				if (line ~ /^Suites:/)    { sub(/^Suites:[ \t]*/, "", line);    suites = " " line " " }
				if (line ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", line); key    = line }
			}
			if (types ~ / deb / && suites ~ / bookworm /) {
				split(uris, u, /[ \t]+/)
				print u[1], key
				exit
			}
		}' "$f"
	elif [[ -f /etc/apt/sources.list ]]; then
		sed -E 's/\[[^]]*\]//' /etc/apt/sources.list |
			awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }'
	fi
}

debdir=$CACHE/debs
have_debs=1
for p in "${DEBS[@]}"; do
	compgen -G "$debdir/${p}_*.deb" >/dev/null || have_debs=0
done
if ((!have_debs)); then
	read -r mirror keyring < <(debian_mirror) || true
	if [[ -z ${mirror:-} ]]; then
		echo "install.sh: no bookworm entry found in the apt sources" >&2
		exit 1
	fi
	[[ -n ${keyring:-} && -f $keyring ]] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	step "fetching python2.7 packages from $SUITE"
	aptdir=$CACHE/apt
	rm -rf "$aptdir" "$debdir"
	mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/parts" "$aptdir/prefs" "$debdir"
	# target=Packages: skip the index files (appstream etc.) not needed here.
	echo "deb [signed-by=$keyring target=Packages] $mirror $SUITE main" >"$aptdir/sources.list"
	# Everything apt writes goes to $aptdir; the system's lists, caches,
	# sources and pins are neither read nor changed. Sandbox::User=root lets
	# apt write into these root-owned directories.
	apt_opts=(
		-o "Dir::State::Lists=$aptdir/lists"
		-o "Dir::Cache=$aptdir"
		-o "Dir::Etc::SourceList=$aptdir/sources.list"
		-o "Dir::Etc::SourceParts=$aptdir/parts"
		-o "Dir::Etc::Preferences=$aptdir/preferences"
		-o "Dir::Etc::PreferencesParts=$aptdir/prefs"
		-o APT::Sandbox::User=root
		-o Acquire::Languages=none
		-o Acquire::Check-Valid-Until=false
	)
	# apt-get update exits 0 when a fetch fails unless told otherwise.
	apt-get "${apt_opts[@]}" --error-on=any update >>"$LOG" 2>&1
	(cd "$debdir" && apt-get "${apt_opts[@]}" download "${DEBS[@]}") >>"$LOG" 2>&1
fi

step "unpacking into $WSTEST_PREFIX"
rm -rf "$WSTEST_PREFIX"
mkdir -p "$WSTEST_PREFIX"
for p in "${DEBS[@]}"; do
	for deb in "$debdir/${p}"_*.deb; do
		dpkg -x "$deb" "$WSTEST_PREFIX"
	done
done
stdlib=$WSTEST_PREFIX/usr/lib/python2.7
# An absolute link to the system's /etc/python2.7; the prefix needs none.
rm -f "$stdlib/sitecustomize.py"
# Debian's site.py reads only dist-packages, while pip --prefix installs into
# site-packages: make them the same directory.
mkdir -p "$stdlib/dist-packages"
ln -s dist-packages "$stdlib/site-packages"

py27_env "$WSTEST_PREFIX"
"$WSTEST_PY" -c 'import ssl, zlib, ctypes' >>"$LOG" 2>&1

# --- pip ---------------------------------------------------------------
pin() { sed -nE "s/^$1==([^ #]+).*/\\1/p" "$REQS"; }
wheeldir=$CACHE/wheels
boot=("pip==$(pin pip)" "setuptools==$(pin setuptools)" "wheel==$(pin wheel)")
boot_files=("$wheeldir/pip-$(pin pip)-py2.py3-none-any.whl"
	"$wheeldir/setuptools-$(pin setuptools)-py2.py3-none-any.whl"
	"$wheeldir/wheel-$(pin wheel)-py2.py3-none-any.whl")
if ! ls "${boot_files[@]}" >/dev/null 2>&1; then
	step "fetching ${boot[*]} (python3 pip)"
	# Runs the system's python3 pip, not the prefix's: drop the py27 env.
	env -u PYTHONHOME -u PYTHONPATH -u LD_LIBRARY_PATH \
		python3 -m pip download --no-deps --only-binary=:all: --python-version 27 \
		-d "$wheeldir" "${boot[@]}" >>"$LOG" 2>&1
fi
step "bootstrapping pip"
# pip runs from its own wheel to install itself and setuptools.
"$WSTEST_PY" "${boot_files[0]}/pip" install --no-index --no-deps \
	--prefix "$WSTEST_PREFIX/usr" --no-warn-script-location "${boot_files[@]}" >>"$LOG" 2>&1

# --- wstest ------------------------------------------------------------
step "installing requirements-py27.txt"
# Python 2.7's pip would use its own old CA bundle; prefer the system's.
if [[ -z ${PIP_CERT:-} && -f /etc/ssl/certs/ca-certificates.crt ]]; then
	export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
inc=$WSTEST_PREFIX/usr/include
# wsaccel builds from source; its headers are in the prefix only.
CFLAGS="-I$inc -I$inc/python2.7 -I$inc/x86_64-linux-gnu/python2.7" \
	PIP_CACHE_DIR=$CACHE/pip27 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 \
	"$WSTEST_PY" -m pip install --no-deps --no-build-isolation \
	--prefix "$WSTEST_PREFIX/usr" --no-warn-script-location -r "$REQS" >>"$LOG" 2>&1
"$WSTEST_PY" -m pip check >>"$LOG" 2>&1

step "checking"
"$WSTEST_PY" -c 'import autobahntestsuite.wstest, wsaccel.xormask, wsaccel.utf8validator, ujson' >>"$LOG" 2>&1
"$AUTOBAHN_DIR/wstest" --autobahnversion 2>>"$LOG" | sed 's/^/install.sh: /'
echo "$fingerprint" >"$WSTEST_STAMP"
step "done"
