"""Data sets, bias construction and text embedding.

``load_dataset(name, split)`` returns a :class:`Dataset` of tensors for every data set the
studies use. See the submodules for each family of loaders.
"""

from fairdd.data._container import Dataset

__all__ = ["Dataset"]

# Loaders, bias construction, Trifeature.
from fairdd.data._bias import (  # noqa: E402
    BIAS_RATIOS,
    COLOUR_NAMES,
    COLOURS,
    CORRUPTIONS,
    apply_colour,
    apply_corruption,
    assign_attributes,
    bias_aligned,
    colorize,
    corrupt,
    make_biased,
)
from fairdd.data._biased_splits import (  # noqa: E402
    BIAS_KINDS,
    BIAS_SOURCES,
    NUM_ATTRIBUTES,
    BiasSplits,
    dataset_label,
    default_corruption_source,
    make_splits,
    normalization_stats,
    probe_data,
    source_images,
    study_data,
)
from fairdd.data._images import mnist_source  # noqa: E402
from fairdd.data._load import DATASETS, LOADERS, load_dataset  # noqa: E402
from fairdd.data._sampling import REAL_SAMPLINGS, RealSampler, RealSampling, stratified_index, stratified_subset  # noqa: E402
from fairdd.data._tabular import feature_names, load_table  # noqa: E402
from fairdd.data._spec import BiasSpec, StudyData  # noqa: E402
from fairdd.data._text import (  # noqa: E402
    BIOS_PROFESSIONS,
    TEMPLATE_PROFESSIONS,
    TemplateBios,
    default_text_encoder,
    embed_texts,
    load_bios,
    load_moji,
    template_bios,
)
from fairdd.data._transforms import channel_stats, denormalize, normalize, normalize_splits  # noqa: E402
from fairdd.data._trifeature import generate_trifeature, split_combinations  # noqa: E402
from fairdd.data._zca import ZCA, fit_zca  # noqa: E402

__all__ += [
    "BiasSpec",
    "StudyData",
    "BIOS_PROFESSIONS",
    "TEMPLATE_PROFESSIONS",
    "TemplateBios",
    "template_bios",
    "default_text_encoder",
    "embed_texts",
    "load_bios",
    "load_moji",
    "BIAS_KINDS",
    "BIAS_RATIOS",
    "BIAS_SOURCES",
    "BiasSplits",
    "COLOUR_NAMES",
    "COLOURS",
    "CORRUPTIONS",
    "DATASETS",
    "LOADERS",
    "NUM_ATTRIBUTES",
    "REAL_SAMPLINGS",
    "RealSampler",
    "RealSampling",
    "ZCA",
    "apply_colour",
    "apply_corruption",
    "assign_attributes",
    "bias_aligned",
    "channel_stats",
    "colorize",
    "corrupt",
    "dataset_label",
    "default_corruption_source",
    "denormalize",
    "feature_names",
    "fit_zca",
    "generate_trifeature",
    "load_dataset",
    "load_table",
    "make_biased",
    "make_splits",
    "mnist_source",
    "normalization_stats",
    "normalize",
    "normalize_splits",
    "probe_data",
    "source_images",
    "split_combinations",
    "stratified_index",
    "stratified_subset",
    "study_data",
]
