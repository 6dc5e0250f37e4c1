"""remogpt: retrieval-augmented motion–language modelling (ReMoGPT, AAAI 2025).

Stages, each a subpackage with a small public API: `motion` (the HumanML3D format), `data`
(folders, the embedded data set), `tokenizer`, `retrieval`, `lm`, `eval`.
"""

__version__ = "0.1.0"
