"""The stage contract as NeMo Curator users write it: None for filtered, per-sub-stage `with_` on
composites, independent copies, names set in `__init__`/`__post_init__`, `["data"]` inputs, fan-out
without a flag, and honest filtered/fan-out counts, on the local executor and on real Ray."""

from __future__ import annotations

import pytest

from curator_core import CompositeStage, Pipeline, ProcessingStage, Resources
from curator_core.executors.local import LocalExecutor
from curator_core.executors.ray import RayExecutor
from curator_core.pipeline import PipelineValidationError
from curator_core.stage import expand_stages
from curator_core.tasks import EmptyTask
from tests.core.stages import (
    AddStage,
    NemoStyleStage,
    NumTask,
    PidStage,
    PostInitNamedStage,
    UnflaggedFanOut,
)


def _nums(values) -> list[NumTask]:
    return [NumTask(dataset_name="n", data=v) for v in values]


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_none_from_process_batch_is_filtered_and_counts_are_right(executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    run = Pipeline("nemo", [NemoStyleStage()]).execute(
        LocalExecutor() if executor == "local" else RayExecutor(), _nums([1, 2, 3, 5])
    )
    # 1 and 5 pass, 2 fans out into 20 and 21, 3 is filtered
    assert sorted(t.data for t in run.outputs) == [1, 5, 20, 21] and not run.failures
    stats = run.stage_stats["nemo_style"]
    assert (stats.tasks_in, stats.tasks_out, stats.filtered, stats.failed) == (4, 4, 1, 0)
    ids = {t.data: t.task_id for t in run.outputs}
    assert ids[20] == "1.0" and ids[21] == "1.1" and ids[5] == "3"  # each output keeps its input's id


def test_a_stage_returning_something_else_fails_that_task_only():
    class Bad(ProcessingStage[NumTask, NumTask]):
        def process(self, task):
            return {"data": 1} if task.data == 2 else task

    run = Pipeline("bad", [Bad()]).execute(LocalExecutor(), _nums([1, 2, 3]))
    assert [t.data for t in run.outputs] == [1, 3]
    (failure,) = run.failures
    assert failure.error_type == "TypeError" and "returned dict where a Task" in failure.message


class TwoAdds(CompositeStage[NumTask, NumTask]):
    def decompose(self):
        return [AddStage(1), AddStage(2)]


def test_composite_with_takes_a_dict_per_sub_stage_and_keywords():
    composite = TwoAdds()
    configured = composite.with_({"add_2": {"resources": Resources(cpus=0.25), "batch_size": 8}})
    assert configured.name == composite.name == "TwoAdds"
    first, second = expand_stages([configured])
    assert first.resources == Resources(cpus=1.0) and first.batch_size == 1
    assert second.resources == Resources(cpus=0.25) and second.batch_size == 8
    assert [s.resources for s in expand_stages([composite])] == [
        Resources(cpus=1.0)
    ] * 2  # original unchanged
    everywhere = composite.with_(name="adds", resources=Resources(cpus=0.5))
    assert everywhere.name == "adds"
    assert [s.resources.cpus for s in expand_stages([everywhere])] == [0.5, 0.5]
    renamed = composite.with_({"add_1": {"name": "first"}})
    assert [s.name for s in expand_stages([renamed])] == ["first", "add_2"]


def test_composite_with_an_unknown_sub_stage_or_setting_is_an_error():
    with pytest.raises(ValueError, match="'add_9'.*sub-stages are: add_1, add_2"):
        Pipeline("p", [TwoAdds().with_({"add_9": {"batch_size": 2}})]).build()
    with pytest.raises(TypeError, match="keys among name, resources, batch_size"):
        TwoAdds().with_({"add_1": {"cpus": 2}})


def test_with_returns_an_independent_copy():
    stage = NemoStyleStage()
    copy = stage.with_(batch_size=2)
    copy.seen.append(1)
    assert stage.seen == [] and stage.batch_size == 4 and copy.batch_size == 2
    assert type(copy) is NemoStyleStage


def test_names_and_resources_assigned_in_init_or_post_init():
    stage = NemoStyleStage()
    assert (stage.name, stage.resources.cpus, stage.batch_size) == ("nemo_style", 0.5, 4)
    post = PostInitNamedStage(cpus=0.5)
    assert post.name == "post_init_named" and post.resources == Resources(cpus=0.5)
    assert post.with_(name="other").name == "other" and post.name == "post_init_named"
    property_style = AddStage(3)  # read-only properties: with_ and assignment still work
    property_style.name = "assigned"
    assert property_style.name == "assigned" and AddStage(3).name == "add_3"


def test_data_inputs_build_without_initial_tasks_and_after_other_stages():
    Pipeline("p", [UnflaggedFanOut(), NemoStyleStage()]).build()  # needs task.data: every task has it
    Pipeline("p", [NemoStyleStage()]).build()


def test_a_missing_input_names_what_is_missing_and_who_could_provide_it():
    class NeedsFrames(ProcessingStage[NumTask, NumTask]):
        name = "needs_frames"

        def inputs(self):
            return [], ["frames"]

        def process(self, task):
            return task

    class MakesFrames(NeedsFrames):
        name = "makes_frames"

        def inputs(self):
            return [], []

        def outputs(self):
            return [], ["frames"]

    with pytest.raises(PipelineValidationError) as error:
        Pipeline("p", [AddStage(1), NeedsFrames(), MakesFrames()]).build()
    message = str(error.value)
    assert "'needs_frames' (#1) needs data.frames" in message
    assert "data.frames is produced by makes_frames, which run after it" in message


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_stage_that_fans_out_without_a_flag_spreads_its_outputs(executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    run = Pipeline("spread", [UnflaggedFanOut(8), PidStage(seconds=0.5)]).execute(
        LocalExecutor() if executor == "local" else RayExecutor(), _nums([0])
    )
    assert sorted(t.data for t in run.outputs) == list(range(8))
    if executor == "ray":  # 8 x 0.5 s on 2 CPUs: both workers took some
        assert len({t.metadata["pid"] for t in run.outputs}) == 2


def test_nemo_conveniences():
    assert EmptyTask().dataset_name == "empty" and EmptyTask().data is None
    pipeline = Pipeline("named", "what it does")
    assert pipeline.description == "what it does" and pipeline.stages == []
    pipeline.add_stage(AddStage(1))
    with pytest.raises(TypeError, match="add_stage takes a ProcessingStage.*got str"):
        pipeline.add_stage("x")
    assert [t.data for t in pipeline.run(LocalExecutor(), _nums([1]))] == [2]
