"""The embedded data set: procedural text–motion pairs in the HumanML3D layout, made on the user's machine."""

from remogpt.data.synth.generate import GENERATOR_VERSION, SynthConfig, SynthResult, progress_bar, synthesize

__all__ = ["GENERATOR_VERSION", "SynthConfig", "SynthResult", "progress_bar", "synthesize"]
