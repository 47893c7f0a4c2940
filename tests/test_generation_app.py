"""task=app: the generation app, through its API (gradio_client) and in a real browser (slow)."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairaug.data.sources.synthetic import read_synthetic
from fairaug.diffusion.generator import Generator
from fairaug.tasks import controlnet_train, synth_generate
from tests.conftest import TINY_DIFFUSION, TINY_PHANTOM, TINY_RUN, compose_config

gr = pytest.importorskip("gradio", reason="task=app needs the [app] extra")
from gradio_client import Client, handle_file  # noqa: E402

from fairaug.generation_app import build_app  # noqa: E402

SAMPLING = ["generation.steps=3", "generation.batch_size=4"]


@pytest.fixture(scope="module")
def model(fairaug_home, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("controlnet_train")
    cfg = compose_config(
        [*TINY_PHANTOM, *TINY_RUN, *TINY_DIFFUSION, f"paths.home={fairaug_home}", f"paths.output_dir={run_dir}"]
    )
    controlnet_train.run(cfg)
    return run_dir


@pytest.fixture(scope="module")
def app(model, tmp_path_factory):
    """The app on the tiny model, served on a free loopback port for the module's tests."""
    output = tmp_path_factory.mktemp("app_output")
    settings = compose_config([f"generation.model={model}", *SAMPLING]).generation
    blocks = build_app(Generator(model), settings, output)
    blocks.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, share=False)
    yield blocks, output
    blocks.close()


def generate(client: Client, subject: str, prompt: str, seed: int, count: int = 1, upload=None, steps: int = 3):
    return client.predict(
        subject, upload, prompt, steps, 2.0, 1.0, seed, count, "ddim", "heart failure", "female", "60s", "obese",
        api_name="/generate",
    )  # fmt: skip


def test_an_image_made_in_the_app_is_the_one_synth_generate_makes(app, model, make_cfg, tmp_path):
    blocks, _ = app
    out = tmp_path / "synthetic"
    synth_generate.run(make_cfg("task=synth_generate", f"generation.model={model}", f"generation.output={out}",
                                *SAMPLING))  # fmt: skip
    plan = pd.read_csv(out / "manifest.csv", dtype={"source_subject": str})
    client = Client(blocks.local_url, verbose=False)
    for row in plan.head(2).itertuples():
        gallery, *_ = generate(client, row.source_subject, row.prompt, int(row.seed))
        made = np.asarray(Image.open(gallery[0]["image"]).convert("RGB"))
        written = np.asarray(Image.open(out / row.image).convert("RGB"))
        assert np.array_equal(made, written), row.subject_id
    assert [item["caption"] for item in gallery] == ["generated (ED, ES, ED as RGB)", "ED", "ES"]


def test_saved_images_form_a_synthetic_dataset_classify_can_read(app, model):
    blocks, output = app
    client = Client(blocks.local_url, verbose=False)
    subject = pd.read_csv(Path(model) / "training_subjects.csv", dtype={"subject_id": str}).subject_id.iloc[0]
    generate(client, subject, "Female, age in 60s, obese BMI, heart failure", seed=5, count=2)
    message = client.predict(["1", "2"], api_name="/save")
    assert "saved 2 image(s)" in message
    generate(client, subject, "Female, age in 60s, obese BMI, heart failure", seed=5, count=1, steps=4)
    assert "saved 1 image(s)" in client.predict(["1"], api_name="/save")  # other settings: another image, kept
    table, problems = read_synthetic(output, None, 0, "raise")
    assert len(table) == 3 and problems == [] and set(table.sex) == {"female"} and set(table.label) == {1}
    assert set(table.bmi_group) == {"obese"} and set(table.source_subject) == {subject}


def test_bad_requests_are_messages_not_stack_traces(app, model, tmp_path):
    blocks, _ = app
    client = Client(blocks.local_url, verbose=False)
    subject = pd.read_csv(Path(model) / "training_subjects.csv", dtype={"subject_id": str}).subject_id.iloc[0]
    with pytest.raises(Exception, match="not in the model's vocabulary|does not know|vocabulary") as error:
        generate(client, subject, "a zebra with heart failure", seed=0)
    assert "Traceback" not in str(error.value)
    wrong = tmp_path / "wrong.png"
    Image.fromarray(np.full((20, 20, 3), 7, np.uint8)).save(wrong)
    with pytest.raises(Exception, match="must be 16 x 16 pixels"):
        generate(client, subject, "Female, heart failure", seed=0, upload=handle_file(str(wrong)))
    with pytest.raises(Exception, match="nothing to save"):
        client.predict([], api_name="/save")


def test_the_task_binds_the_loopback_interface_and_warns_for_any_other(model, make_cfg, monkeypatch, caplog):
    from fairaug.tasks import app as app_task

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs))
    app_task.run(make_cfg("task=app", f"generation.model={model}"))
    assert launched["server_name"] == "127.0.0.1" and launched["share"] is False and launched["show_error"] is False
    caplog.set_level("WARNING", logger="fairaug")
    app_task.run(make_cfg("task=app", f"generation.model={model}", "app.host=0.0.0.0"))
    assert launched["server_name"] == "0.0.0.0" and "reachable from other machines" in caplog.text


CHROMIUM = shutil.which("chromium")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_a_user_generates_and_saves_in_a_real_browser(app, model, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    blocks, output = app
    second = pd.read_csv(Path(model) / "training_subjects.csv", dtype={"subject_id": str}).subject_id.iloc[1]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(blocks.local_url)
        page.get_by_label("subject (its masks)").click()  # a mask: the second training subject's
        page.get_by_role("option", name=second, exact=True).click()
        page.get_by_label("sex").last.click()  # the prompt's (the first is the mask filter)
        page.get_by_role("option", name="male", exact=True).click()
        prompt = page.get_by_label("prompt (composed; edit freely)")
        playwright.expect(prompt).to_have_value(re.compile("^Male, "), timeout=10_000)  # recomposed
        page.get_by_label("seed").fill("11")
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("image(s) from seed 11").wait_for(timeout=120_000)
        gallery = page.get_by_test_id("gallery") if page.get_by_test_id("gallery").count() else page
        for caption in ("generated (ED, ES, ED as RGB)", "ED", "ES"):  # the picture and its two frames
            gallery.get_by_text(caption, exact=True).first.wait_for(timeout=10_000)
        page.get_by_role("button", name="Save").click()
        page.get_by_text("saved 1 image(s)").wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        browser.close()
    manifest = pd.read_csv(output / "manifest.csv", dtype={"source_subject": str})
    saved = manifest[manifest.seed.astype(int) == 11].iloc[0]
    assert (saved.source_subject, saved.sex) == (second, "male") and saved.prompt.startswith("Male")
    assert (tmp_path / "app.png").stat().st_size > 10_000  # docs/app.png is one such screenshot
