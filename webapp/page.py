"""The Gradio page: a video (uploaded, or the demo's sample), the model, and what the analysis found."""
import gradio as gr

INTRO = """# S2D: the emotions of the faces in a video
Upload a video: every face is found and tracked, and the model tells which emotion each face shows over time
(windows of a few seconds). The analysis runs on this machine; one video at a time, others wait in line."""


def build_page(analyses, default_label, sample_video, sample_hint, keep_hours=24.0):
    """`analyses`: a webapp.analysis.VideoAnalyses; `sample_video`: a video to offer, or None and
    `sample_hint` says how to make it. Gradio deletes the files it holds (uploads, files it served) once they
    are `keep_hours` old, checking every hour at most."""

    def analyze(video, label, progress=gr.Progress()):
        return analyses.analyze(video, label, progress)

    age = round(3600 * keep_hours)
    with gr.Blocks(title="S2D video emotion timeline", fill_width=True, delete_cache=(min(age, 3600), age)) as page:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                # a file, not gr.Video: the pipeline reads any format FFmpeg does, browsers play far fewer
                video = gr.File(label="video (any format FFmpeg reads)", file_types=["video"], type="filepath",
                                elem_id="video")
                if sample_video:
                    sample = gr.Button(f"Use the sample video ({sample_video})", size="sm")
                    sample.click(lambda: sample_video, None, video)
                else:
                    gr.Markdown(sample_hint)
            with gr.Column():
                labels = list(analyses.models)
                model = gr.Dropdown(labels, value=default_label, label="model", interactive=len(labels) > 1)
                description = gr.Markdown(analyses.describe(default_label), elem_id="model")
                model.change(analyses.describe, model, description)
                run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                status = gr.Markdown(elem_id="status")
        timeline = gr.Image(label="emotion timeline, one panel per face track", type="filepath",
                            interactive=False, elem_id="timeline")
        table = gr.Dataframe(label="face tracks: dominant emotion and share of windows per class",
                             interactive=False, elem_id="tracks")
        with gr.Row():
            annotated = gr.Video(label="annotated video", interactive=False, height=360, elem_id="annotated")
            downloads = gr.File(label="predictions.csv and summary.json", file_count="multiple",
                                interactive=False, elem_id="downloads")
        run.click(analyze, [video, model], [status, timeline, table, annotated, downloads], concurrency_limit=1,
                  show_progress_on=timeline)
    return page.queue(default_concurrency_limit=1)
