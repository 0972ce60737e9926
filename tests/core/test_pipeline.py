import pytest

from curator_core import LocalExecutor, Pipeline, PipelineValidationError, ProcessingStage
from curator_core.tasks import Video, VideoTask
from tests.core.stages import AddStage, AddTwiceComposite, NumTask


class NeedsMetadata(ProcessingStage[VideoTask, VideoTask]):
    def inputs(self):
        return [], ["metadata"]

    def process(self, task):
        return task


class MakesMetadata(ProcessingStage[VideoTask, VideoTask]):
    def inputs(self):
        return [], ["input_path"]

    def outputs(self):
        return [], ["metadata"]

    def process(self, task):
        return task


def test_build_names_the_stage_and_the_missing_attribute():
    pipeline = Pipeline("p", [NeedsMetadata()])
    with pytest.raises(PipelineValidationError, match=r"'NeedsMetadata' \(#0\) needs data.metadata"):
        pipeline.build([VideoTask(dataset_name="d", data=Video(input_path="a.mp4"))])


def test_build_accepts_attributes_produced_upstream_or_carried_by_initial_tasks():
    pipeline = Pipeline("p").add_stage(MakesMetadata()).add_stage(NeedsMetadata())
    stages = pipeline.build([VideoTask(dataset_name="d", data=Video(input_path="a.mp4"))])
    assert [s.name for s in stages] == ["MakesMetadata", "NeedsMetadata"]


def test_build_rejects_empty_attributes_of_initial_tasks():
    pipeline = Pipeline("p", [MakesMetadata()])
    with pytest.raises(PipelineValidationError, match="data.input_path"):
        pipeline.build([VideoTask(dataset_name="d", data=Video(input_path=""))])


def test_build_decomposes_composites_and_rejects_duplicate_names():
    assert len(Pipeline("p", [AddTwiceComposite()]).build()) == 3
    with pytest.raises(PipelineValidationError, match="unique"):
        Pipeline("p", [AddStage(1), AddStage(1)]).build()


def test_describe_is_a_table_of_stages():
    text = Pipeline("demo", [MakesMetadata(), NeedsMetadata()], description="test").describe()
    assert "Pipeline demo: test" in text
    assert "MakesMetadata" in text and "data.input_path" in text and "cpu=1" in text


def test_run_returns_last_stage_outputs_and_keeps_the_report():
    pipeline = Pipeline("p", [AddTwiceComposite()])
    outputs = pipeline.run(LocalExecutor(), [NumTask(dataset_name="d", data=i) for i in range(3)])
    assert [t.data for t in outputs] == [6, 7, 8]
    assert [t.task_id for t in outputs] == ["0", "1", "2"]
    assert pipeline.last_result.stage_stats["add_3"].tasks_out == 3
