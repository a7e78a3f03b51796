"""Checks that sitecustomize.py's UTF-8 validator answers exactly as wsaccel's.

Runs under wstest's Python 2.7 (install.sh calls it): every input below, whole
and split at every point into two chunks and at random points into several,
must give the same (valid, endsOnCodePoint, currentIndex, totalIndex) from
both validators, chunk by chunk. Exits 1 on the first difference.
"""
import itertools
import random
import sys

import sitecustomize
import wsaccel.utf8validator as wsaccel_utf8

fast_class = wsaccel_utf8.Utf8Validator
exact_class = sitecustomize._ExactUtf8Validator
if fast_class is exact_class:
    sys.exit("check_utf8.py: the fast validator is not installed")

leads = [0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
         0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFB, 0xFC, 0xFE, 0xFF]
tails = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
inputs = [b"", b"Hello", u"\u00e9\u20ac\U0001f600".encode("utf-8"),
          b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
          b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80",
          b"\xed\xbf\xbf", b"\xee\x80\x80", b"\xef\xbf\xbf\xef\xbf\xbe"]
for n in range(1, 5):
    for lead in leads:
        for rest in itertools.product(tails, repeat=n - 1):
            inputs.append(bytearray([lead] + list(rest)))
inputs = [bytes(b) for b in inputs]
rng = random.Random(6455)
for _ in range(2000):
    pieces = [rng.choice(inputs) for _ in range(rng.randint(1, 6))]
    inputs.append(b"".join(pieces))


def answers(cls, chunks):
    v = cls()
    out = []
    for c in chunks:
        out.append(v.validate(c))
        if not out[-1][0]:
            break
    return out


def splits(data):
    yield [data]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    for _ in range(3):
        cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, 4)))
        yield [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


checked = 0
for data in inputs:
    for chunks in splits(data):
        fast, exact = answers(fast_class, chunks), answers(exact_class, chunks)
        if fast != exact:
            sys.exit("check_utf8.py: %r split as %r: fast %r, wsaccel %r"
                     % (data, chunks, fast, exact))
        checked += 1
print("check_utf8.py: %d chunkings of %d inputs agree" % (checked, len(inputs)))
