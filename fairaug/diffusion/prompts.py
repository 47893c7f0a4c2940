"""Text prompts from subject attributes, and a tokenizer built locally from their words.

Prompts follow the paper: "Female, age in 60s, obese BMI, heart failure". The tiny text
encoder's tokenizer is a word-level vocabulary of exactly the words such prompts can use,
built and saved with the model (no download); a prompt with another word is an error that
lists the vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from fairaug.data.cohort import ATTRIBUTES, LABEL_NAMES, UNKNOWN
from fairaug.data.groups import BMI_GROUPS
from fairaug.errors import ConfigError, DataError

DEFAULT_TEMPLATE = "{sex}, age in {age_group}, {bmi_group} BMI, {diagnosis}"
SPECIAL = ["[PAD]", "[UNK]"]
_WORD = re.compile(r"[a-z0-9\-]+")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _values(row) -> dict[str, str]:
    values = {a: str(row.get(a, UNKNOWN)) for a in ATTRIBUTES}
    return {**values, "diagnosis": LABEL_NAMES[int(row["label"])]}


def check_template(template: str) -> None:
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - {*ATTRIBUTES, "diagnosis"})
    if unknown:
        raise ConfigError(
            f"diffusion.prompt_template has unknown placeholder(s) {unknown}; known: {[*ATTRIBUTES, 'diagnosis']}"
        )


def prompt_for(row, template: str) -> str:
    """The prompt of one cohort row. A comma-separated part of the template whose attribute
    the data does not record for this subject is left out ("age in unknown" says nothing)."""
    check_template(template)
    values = _values(row)
    parts = [
        part for part in template.split(",") if all(values[name] != UNKNOWN for name in _PLACEHOLDER.findall(part))
    ]
    text = ",".join(parts).strip().format(**values)
    return text[:1].upper() + text[1:]


def prompts_for(table: pd.DataFrame, template: str) -> list[str]:
    return [prompt_for(row, template) for _, row in table.iterrows()]


def prompt_vocabulary(template: str, cohort: pd.DataFrame) -> list[str]:
    """Every word a prompt of `template` can contain, for any sex, BMI group and diagnosis
    and the cohort's other attribute values (age groups, vendors, centres)."""
    check_template(template)
    values = [
        "female",
        "male",
        *BMI_GROUPS,
        *LABEL_NAMES.values(),
        *(v for a in ATTRIBUTES if a in cohort for v in cohort[a].astype(str).unique()),
    ]
    found = words(_PLACEHOLDER.sub(" ", template)) + [w for v in values for w in words(str(v))]
    return sorted(set(found))


def build_tokenizer(vocabulary: list[str], max_length: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate([*SPECIAL, *vocabulary])}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(",", " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", model_max_length=max_length
    )


def load_tokenizer(folder: Path):
    """The tiny word-level tokenizer or a pretrained one (SD 2.1's CLIP), from a local folder."""
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def check_known(prompts: list[str], tokenizer) -> None:
    """Fail on a prompt word the tokenizer maps to [UNK], naming the word and the vocabulary."""
    vocabulary = tokenizer.get_vocab()
    if "[UNK]" not in vocabulary:  # a pretrained tokenizer (SD 2.1) splits any word into pieces
        return
    for prompt in prompts:
        if len(words(prompt)) > tokenizer.model_max_length:
            raise DataError(
                f"prompt {prompt!r} has more than {tokenizer.model_max_length} words, the tokenizer's "
                "length; shorten diffusion.prompt_template"
            )
        unknown = [w for w in words(prompt) if w not in vocabulary]
        if unknown:
            known = sorted(w for w in vocabulary if w not in SPECIAL)
            raise DataError(
                f"prompt {prompt!r} has word(s) {unknown} the tiny tokenizer does not know; its vocabulary: {known}"
            )


def tokenize(tokenizer, prompts: list[str]):
    return tokenizer(
        prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
