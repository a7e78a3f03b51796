# Loaded by wstest's Python 2.7 (autobahn/wstest puts this directory first on
# PYTHONPATH), before wstest itself.
#
# wstest has no option for the listening address: fuzzingserver (and the
# echo/broadcast/web modes) call listenWS()/listenTCP() with interface='',
# i.e. every interface. Every Twisted listener goes through
# PosixReactorBase.listenTCP (listenSSL calls it too), so rewriting an empty
# interface there to WSTEST_LISTEN_INTERFACE (default 127.0.0.1) keeps all
# of wstest's listening sockets on loopback without touching its sources.
# Twisted is imported lazily only if it is installed, so pip runs inside the
# prefix are unaffected.
import os

_INTERFACE = os.environ.get("WSTEST_LISTEN_INTERFACE", "127.0.0.1")

try:
    from twisted.internet import posixbase as _posixbase
except ImportError:
    _posixbase = None

if _posixbase is not None and _INTERFACE:
    _listen_tcp = _posixbase.PosixReactorBase.listenTCP

    def _listen_tcp_loopback(self, port, factory, backlog=50, interface=""):
        return _listen_tcp(self, port, factory, backlog, interface or _INTERFACE)

    _posixbase.PosixReactorBase.listenTCP = _listen_tcp_loopback


# wstest checks every text message it receives with wsaccel's incremental
# UTF-8 validator, which runs at about 5 MB/s: with permessage-deflate (cases
# 12.* and 13.* send thousands of messages of up to 128 KiB) that check was
# three quarters of wstest's CPU time and made those cases take most of the
# run. The wrapper below gives the same answers faster: a chunk that starts on
# a code point boundary and is, as a whole, valid UTF-8 (Python's C decoder,
# which is strict except that it lets encoded surrogates through, so those are
# looked for separately) is accepted in one step; anything else (invalid
# input, a chunk ending inside a code point, the chunk after it) goes to
# wsaccel's validator, which reports the exact failing index as before.
# check_utf8.py, run by install.sh, compares the two on edge cases and
# random splits. WSTEST_EXACT_UTF8=1 turns the wrapper off.
try:
    import wsaccel.utf8validator as _wsaccel_utf8
except ImportError:
    _wsaccel_utf8 = None

if _wsaccel_utf8 is not None and os.environ.get("WSTEST_EXACT_UTF8") != "1":
    import re as _re

    _SURROGATE = _re.compile(u"[\ud800-\udfff]")
    _ExactUtf8Validator = _wsaccel_utf8.Utf8Validator

    class _Utf8Validator(object):
        """wsaccel's Utf8Validator interface: reset() and validate(bytes)."""

        def __init__(self):
            self._exact = _ExactUtf8Validator()
            self.reset()

        def reset(self):
            self._exact.reset()
            # At a code point boundary, nothing pending in the exact validator.
            self._aligned = True
            # Bytes accepted by the fast path, which the exact validator never saw,
            # and the totalIndex reported last.
            self._skipped = 0
            self._total = 0

        def validate(self, ba):
            if self._aligned:
                try:
                    text = ba.decode("utf-8")
                except (UnicodeDecodeError, AttributeError):
                    text = None
                if text is not None and not _SURROGATE.search(text):
                    self._skipped += len(ba)
                    self._total += len(ba)
                    return True, True, len(ba), self._total
            valid, ends, current, total = self._exact.validate(ba)
            self._aligned = valid and ends
            self._total = total + self._skipped
            return valid, ends, current, self._total

    _wsaccel_utf8.Utf8Validator = _Utf8Validator
