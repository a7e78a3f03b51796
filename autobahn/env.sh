# shellcheck shell=bash disable=SC2034  # variables used by the scripts sourcing this
# Sourced by install.sh, run.sh and wstest: where wstest's private
# Python 2.7 lives and the environment it needs to run from there.

AUTOBAHN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WSTEST_PREFIX=${WSTEST_PREFIX:-$AUTOBAHN_DIR/.prefix}
WSTEST_PY=$WSTEST_PREFIX/usr/bin/python2.7
WSTEST_STAMP=$WSTEST_PREFIX/.installed

# Export what the unpacked bullseye interpreter needs: its own libpython,
# libssl1.1 and libffi7 (Debian 12 ships other sonames), its stdlib (found
# from the executable's location anyway; PYTHONHOME guards against one set
# for another Python), and no user site or foreign PYTHONPATH.
py27_env() {
	local prefix=$1
	export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	export PYTHONHOME="$prefix/usr"
	export PYTHONPATH="$AUTOBAHN_DIR/config/py27"
	export PYTHONNOUSERSITE=1
	export PYTHONUNBUFFERED=1
	export PYTHONIOENCODING=utf-8
	# cryptography 3.3 warns at every import that Python 2 is deprecated.
	export PYTHONWARNINGS="ignore:Python 2 is no longer supported"
	unset PYTHONSTARTUP PYTHONINSPECT
}
