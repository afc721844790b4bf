"""The bottom layer: mechanisms that every other part of FashionFlow uses, importing nothing else of it.

files         writing files and folders whole or not at all; file hashes
seeds         the one range of seeds, random seeds, and a seed derived from a name
manifests     JSON-lines manifests written by many processes at once, and their merge
environment   whole numbers and true/false from environment variables, flags and requests
memory        recognising out-of-memory however it surfaces, and handing memory back
errors        the kinds of failure, the sentence for any exception, and the exit status of each kind
options       settings dataclasses whose fields carry help and rules -> command-line flags and checks
lazy          package attributes imported on first use (a light `--help`)
"""
