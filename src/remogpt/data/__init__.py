"""Data: HumanML3D-layout folders (HumanML3D, KIT-ML, the embedded set), Dataset/collate, checks."""

from remogpt.data.check import CheckReport, check_folder, composition_keys, motion_quality
from remogpt.data.dataset import MotionBatch, MotionTextDataset, collate_motion_text, open_split, split_clips
from remogpt.data.folder import (
    SPLITS,
    Caption,
    DataFormatError,
    MotionClip,
    SampleId,
    caption_file,
    check_id,
    detect_skeleton,
    load_captions,
    load_features,
    load_split,
    motion_file,
    parse_caption_line,
    parse_sample_id,
    read_split_ids,
)
from remogpt.data.normalize import Normalizer, grouped_mean_std

__all__ = [
    "SPLITS",
    "Caption",
    "CheckReport",
    "DataFormatError",
    "MotionBatch",
    "MotionClip",
    "MotionTextDataset",
    "Normalizer",
    "SampleId",
    "caption_file",
    "check_folder",
    "check_id",
    "collate_motion_text",
    "composition_keys",
    "detect_skeleton",
    "grouped_mean_std",
    "load_captions",
    "load_features",
    "load_split",
    "motion_file",
    "motion_quality",
    "open_split",
    "parse_caption_line",
    "parse_sample_id",
    "read_split_ids",
    "split_clips",
]
