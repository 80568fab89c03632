# -*- coding: utf-8 -*-
"""Non-ASCII module file name and function names, for pycore's string decoding.

CPython stores a str in one of three compact kinds; each function name below
uses a different one (and the file name "données.py" is a latin-1 one):
  café     -> 1 byte per char, non-ASCII (latin-1)
  naïve_λ  -> 2 bytes per char (U+03BB)
  𠀀_ucs4  -> 4 bytes per char (U+20000)
All survive the NFKC normalisation that Python applies to identifiers.
Python 3 only; Python 2 runs données_py2.py instead.
"""
import time

import recording


def café():
    naïve_λ()


def naïve_λ():
    𠀀_ucs4()


def 𠀀_ucs4():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


entry = café  # what parked_threads.py runs, in either variant
