"""The interactive generation app (task=app): a trained generator explored by hand.

Pick a training mask (filtered by label and subgroup) or upload one, compose the prompt from
the attributes the model was trained with (or type it), set the sampling, generate: each image
is shown as the RGB picture the model made and as its ED and ES frames with the mask outlines.
"Save" adds the chosen images to a synthetic dataset (manifest.csv + PNGs, the layout
synth_generate writes), usable as data.synthetic.path. Sampling goes through the same
`Generator.images` as synth_generate.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from PIL import Image

from fairaug.data.cohort import LABEL_NAMES, UNKNOWN
from fairaug.data.groups import BMI_GROUPS
from fairaug.data.sources.synthetic import GENERATOR_SUBJECTS, MANIFEST
from fairaug.diffusion.generator import Generator, as_png_array, write_manifest, write_subject
from fairaug.diffusion.prompts import prompt_for
from fairaug.diffusion.sampling import SCHEDULERS
from fairaug.errors import FairaugError
from fairaug.figures import FRAMES, mask_legend, plt, show_frame
from fairaug.io import write_csv

log = logging.getLogger(__name__)
ANY = "any"
LABELS = {name: label for label, name in LABEL_NAMES.items()}
FILTERS = ("label", "sex", "age_group", "bmi_group")


def _choices(generator: Generator, attribute: str) -> list[str]:
    """What a prompt may say of an attribute: every sex and BMI group (the rare subgroups a user
    wants to try), the age groups, vendors and centres the model saw."""
    seen = sorted(generator.training[attribute].astype(str).unique()) if attribute in generator.training else []
    known = {"sex": ["female", "male"], "bmi_group": list(BMI_GROUPS)}.get(attribute, [])
    return [*known, *(v for v in seen if v not in known and v != UNKNOWN)]


def _figure_pixels(draw) -> np.ndarray:
    fig, ax = plt.subplots(figsize=(2.4, 2.6))
    draw(ax)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return np.asarray(Image.open(buffer).convert("RGB"))


def panels(image: torch.Tensor, masks: torch.Tensor) -> list[tuple[np.ndarray, str]]:
    """The RGB picture as generated (the PNG's pixels) and its ED and ES frames with outlines."""
    shown = [(as_png_array(image), "generated (ED, ES, ED as RGB)")]
    for f, frame in enumerate(FRAMES):
        pixels = _figure_pixels(lambda ax: show_frame(ax, image[f].numpy(), masks[f].numpy(), frame))
        shown.append((pixels, frame))
    return shown


def mask_preview(masks: torch.Tensor) -> np.ndarray:
    def draw(ax):
        show_frame(ax, np.zeros(masks.shape[-2:]), masks[0].numpy(), "mask at ED (ES alike)")
        mask_legend(ax.figure)

    return _figure_pixels(draw)


def uploaded_masks(upload: np.ndarray, size: int) -> torch.Tensor:
    """A mask PNG in the stacked layout (ED, ES, ED label channels, values 0-3) at the model's size."""
    if upload.ndim != 3 or upload.shape[2] != 3:
        raise gr.Error(f"the mask PNG must have 3 channels (ED, ES, ED labels), got shape {upload.shape}")
    if upload.shape[:2] != (size, size):
        raise gr.Error(f"the mask PNG must be {size} x {size} pixels (the model's size), got {upload.shape[1]} x "
                       f"{upload.shape[0]}")  # fmt: skip
    if upload.max() > 3:
        raise gr.Error(f"the mask PNG must hold labels 0-3 (0 background, 1 LV, 2 myocardium, 3 RV), found "
                       f"{int(upload.max())}")  # fmt: skip
    return torch.from_numpy(np.ascontiguousarray(upload.transpose(2, 0, 1)).astype(np.uint8))


def subject_id(item: dict) -> str:
    """A stable id for a saved image, from everything that made or labels it (the mask's labels,
    prompt, seed, sampling settings, attributes): only the very same image saves onto itself."""
    digest = hashlib.sha256(item["masks"].numpy().tobytes())
    for part in (item["prompt"], item["seed"], sorted(item["settings"].items()), sorted(item["attributes"].items())):
        digest.update(repr(part).encode())
    return "app-" + digest.hexdigest()[:12]


def build_app(generator: Generator, settings, output: Path) -> gr.Blocks:
    """The app for `generator`, sampling with the generation `settings` as defaults and saving
    into `output`."""
    output = Path(output)
    template = generator.parts.meta["prompt_template"]
    training = generator.training.assign(label=generator.training.label.map(LABEL_NAMES))
    # the diagnosis is always chosen: it is the label a saved image carries, said in the prompt or not
    attributes = [
        "diagnosis",
        *(a for a in ("sex", "age_group", "bmi_group", "vendor", "centre") if "{" + a + "}" in template),
    ]

    def matching(*values) -> gr.Dropdown:
        chosen = training
        for column, value in zip(FILTERS, values):
            if value != ANY:
                chosen = chosen[chosen[column].astype(str) == value]
        ids = list(chosen.subject_id)
        return gr.Dropdown(choices=ids, value=ids[0] if ids else None)

    def preview(subject):
        return mask_preview(generator.training_masks([subject])[0]) if subject else None

    def compose(*values) -> str:
        row = dict(zip(attributes, values))
        row["label"] = LABELS[row.pop("diagnosis", LABEL_NAMES[1])]
        return prompt_for(row, template)

    def generate(subject, upload, prompt, steps, guidance, control, seed, count, scheduler, *values,
                 progress=gr.Progress()):  # fmt: skip
        try:
            masks = uploaded_masks(upload, generator.size) if upload is not None else None
            if masks is None and not subject:
                raise gr.Error("choose a training mask or upload one")
            masks = masks if masks is not None else generator.training_masks([subject])[0]
            generator.check_prompts([prompt])
            sampling = {"steps": int(steps), "scheduler": str(scheduler), "guidance_scale": float(guidance),
                        "control_scale": float(control), "negative_prompt": str(settings.negative_prompt)}  # fmt: skip
            seeds = [int(seed) + i for i in range(int(count))]
            progress(0, desc="sampling")
            images = generator.images(
                masks.expand(len(seeds), -1, -1, -1), [prompt] * len(seeds), seeds, OmegaConf.create(sampling)
            )
        except FairaugError as error:  # e.g. a prompt word the tiny tokenizer does not know
            raise gr.Error(str(error)) from None
        source = subject if upload is None else "uploaded"
        record = {"masks": masks, "prompt": prompt, "source": source, "attributes": dict(zip(attributes, values)),
                  "settings": sampling}  # fmt: skip
        made = [{**record, "image": image, "seed": s} for image, s in zip(images, seeds)]
        shown = [panel for item in made for panel in panels(item["image"], item["masks"])]
        numbers = [str(i + 1) for i in range(len(made))]
        status = f"{len(made)} image(s) from seed {seed}"
        if prompt != compose(*values):  # the dropdowns, not the typed text, label what is saved
            labels = ", ".join(f"{k}={v}" for k, v in record["attributes"].items())
            status += f"; the prompt was typed: saved images are labelled by the dropdowns ({labels})"
        return shown, made, gr.CheckboxGroup(choices=numbers, value=numbers), status

    def save(made, keep) -> str:
        chosen = [made[int(k) - 1] for k in keep or []]
        if not chosen:
            raise gr.Error("nothing to save: generate, then tick the images to keep")
        (output / "images").mkdir(parents=True, exist_ok=True)
        (output / "masks").mkdir(parents=True, exist_ok=True)
        record = output / GENERATOR_SUBJECTS  # the leak check's: every generator that made images here
        earlier_record = pd.read_csv(record, dtype={"subject_id": str}) if record.is_file() else None
        write_csv(pd.concat([earlier_record, generator.training]).drop_duplicates("subject_id"), record)
        rows = []
        for item in chosen:
            sid = subject_id(item)
            row = {"subject_id": sid, "image": f"images/{sid}.png", "mask": f"masks/{sid}.png"}
            row.update(_cell(item["attributes"], generator.training, item["source"]))
            row.update(prompt=item["prompt"], seed=item["seed"], model_id=generator.model_id, **item["settings"])
            write_subject(output, row["image"], row["mask"], item["image"], item["masks"])
            rows.append(row)
        manifest = output / MANIFEST
        earlier = pd.read_csv(manifest, dtype=str) if manifest.is_file() else pd.DataFrame()
        plan = pd.concat([earlier, pd.DataFrame(rows).astype(str)], ignore_index=True)
        plan = plan.drop_duplicates("subject_id", keep="last")
        write_manifest(plan, output)
        return f"saved {len(rows)} image(s) to {output} ({manifest.name}: {len(plan)} subject(s))"

    with gr.Blocks(title="fairaug: generate") as app:
        gr.Markdown(f"### fairaug generator `{generator.model_id}` ({generator.size} px, on {generator.device})")
        with gr.Row():
            with gr.Column():
                with gr.Tab("training mask"):
                    filters = [gr.Dropdown([ANY, *sorted(training[c].astype(str).unique())], value=ANY, label=c)
                               for c in FILTERS]  # fmt: skip
                    first = list(training.subject_id)
                    subject = gr.Dropdown(first, value=first[0], label="subject (its masks)")
                    shown_mask = gr.Image(preview(first[0]), label="mask", interactive=False)
                with gr.Tab("upload a mask"):
                    upload = gr.Image(type="numpy", image_mode="RGB", label=f"mask PNG ({generator.size} px, "
                                      "channels ED, ES, ED, labels 0-3)")  # fmt: skip
            with gr.Column():
                parts = []
                for attribute in attributes:
                    choices = list(LABELS) if attribute == "diagnosis" else _choices(generator, attribute)
                    parts.append(gr.Dropdown(choices, value=choices[-1] if attribute == "diagnosis" else choices[0],
                                             label=attribute))  # fmt: skip
                prompt = gr.Textbox(compose(*[p.value for p in parts]), label="prompt (composed; edit freely)")
                steps = gr.Slider(1, max(100, int(settings.steps)), value=int(settings.steps), step=1,
                                  label="sampling steps")  # fmt: skip
                scale = float(settings.guidance_scale)
                guidance = gr.Slider(1.0, max(10.0, scale), value=scale, step=0.05, label="guidance")
                control = gr.Slider(0.0, 2.0, value=float(settings.control_scale), step=0.1, label="control strength")
                seed = gr.Number(int(settings.seed), precision=0, label="seed")
                count = gr.Slider(1, 8, value=1, step=1, label="images")
                scheduler = gr.Dropdown(sorted(SCHEDULERS), value=str(settings.scheduler), label="scheduler")
                run = gr.Button("Generate", variant="primary")
        status = gr.Markdown()
        gallery = gr.Gallery(label="generated | ED | ES", columns=3, format="png")
        made = gr.State([])
        keep = gr.CheckboxGroup([], label="keep")
        save_button = gr.Button("Save")
        saved = gr.Markdown()

        for dropdown in filters:
            dropdown.change(matching, filters, subject)
        subject.change(preview, subject, shown_mask)
        for part in parts:
            part.change(compose, parts, prompt)
        run.click(generate, [subject, upload, prompt, steps, guidance, control, seed, count, scheduler, *parts],
                  [gallery, made, keep, status], api_name="generate")  # fmt: skip
        save_button.click(save, [made, keep], saved, api_name="save")
    return app


def _cell(attributes: dict, training: pd.DataFrame, source: str) -> dict:
    """A saved image's cohort attributes: the prompt's, and the site of its mask donor."""
    donor = training[training.subject_id == source]
    site = {c: str(donor[c].iloc[0]) if len(donor) and c in donor else UNKNOWN for c in ("vendor", "centre")}
    label = LABELS[attributes["diagnosis"]]
    cell = {"label": label, "sex": UNKNOWN, "age_group": UNKNOWN, "bmi_group": UNKNOWN, "source_subject": source}
    cell.update({k: v for k, v in attributes.items() if k in ("sex", "age_group", "bmi_group")})
    return {**cell, **site, **{k: v for k, v in attributes.items() if k in ("vendor", "centre")}}
