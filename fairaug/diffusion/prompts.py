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

from fairaug.data.cohort import LABEL_NAMES
from fairaug.data.groups import BMI_GROUPS
from fairaug.errors import DataError

DEFAULT_TEMPLATE = "{sex}, age in {age_group}, {bmi_group} BMI, {diagnosis}"
SPECIAL = ["[PAD]", "[UNK]"]
_WORD = re.compile(r"[a-z0-9\-]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def prompt_for(row, template: str) -> str:
    """The prompt of one cohort row (needs label, sex, age_group, bmi_group)."""
    text = template.format(sex=row["sex"], age_group=row["age_group"], bmi_group=row["bmi_group"],
                           diagnosis=LABEL_NAMES[int(row["label"])])
    return text[:1].upper() + text[1:]


def prompts_for(table: pd.DataFrame, template: str) -> list[str]:
    return [prompt_for(row, template) for _, row in table.iterrows()]


def prompt_vocabulary(template: str, age_groups) -> list[str]:
    """Every word a prompt of `template` can contain, for any sex, BMI group, diagnosis and
    the given age groups."""
    values = ["female", "male", *BMI_GROUPS, *LABEL_NAMES.values(), *age_groups]
    found = words(re.sub(r"\{\w+\}", " ", template)) + [w for v in values for w in words(str(v))]
    return sorted(set(found))


def build_tokenizer(vocabulary: list[str], max_length: int) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate([*SPECIAL, *vocabulary])}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(",", " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   model_max_length=max_length)


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
            raise DataError(f"prompt {prompt!r} has more than {tokenizer.model_max_length} words, the tokenizer's "
                            "length; shorten diffusion.prompt_template")
        unknown = [w for w in words(prompt) if w not in vocabulary]
        if unknown:
            known = sorted(w for w in vocabulary if w not in SPECIAL)
            raise DataError(f"prompt {prompt!r} has word(s) {unknown} the tiny tokenizer does not know; "
                            f"its vocabulary: {known}")


def tokenize(tokenizer, prompts: list[str]):
    return tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids
