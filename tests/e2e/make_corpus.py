#!/usr/bin/env python3
"""Writes a small synthetic English-like corpus (deterministic): sentences from a tiny grammar with a
Zipf-distributed vocabulary, documents separated by blank lines. Usage: make_corpus.py OUT.txt [KB]"""
import random
import sys

out = sys.argv[1]
kbytes = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = random.Random(1234)
nouns = "cat dog bird model river tree house city garden teacher student optimizer matrix token".split()
verbs = "sees finds likes trains builds follows reads writes quantizes measures".split()
adjs = "small large quiet bright slow fast green old new careful".split()
dets = ["the", "a", "every", "one"]


def zipf(words):
    weights = [1.0 / (i + 1) for i in range(len(words))]
    return rng.choices(words, weights)[0]


def sentence():
    s = f"{zipf(dets)} {zipf(adjs)} {zipf(nouns)} {zipf(verbs)} {zipf(dets)} {zipf(nouns)}"
    if rng.random() < 0.3:
        s += f" near {zipf(dets)} {zipf(adjs)} {zipf(nouns)}"
    return s.capitalize() + "."


with open(out, "w") as f:
    written = 0
    while written < kbytes * 1024:
        doc = " ".join(sentence() for _ in range(rng.randint(3, 8)))
        f.write(doc + "\n\n")
        written += len(doc) + 2
