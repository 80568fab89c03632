# -*- coding: utf-8 -*-
"""Python 2's variant of données.py: the same non-ASCII module file name, for
pycore's decoding of Python 2 byte strings (co_filename), with ASCII function
names (Python 2 identifiers are ASCII). parked_threads.py loads it by path.
"""
import time

import recording


def cafe():
    naive()


def naive():
    ucs4()


def ucs4():
    recording.announce()
    time.sleep(recording.PARK_SECONDS)  # PARK


entry = cafe  # what parked_threads.py runs, in either variant
