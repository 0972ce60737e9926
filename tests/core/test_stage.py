from curator_core import Resources
from curator_core.stage import expand_stages
from tests.core.stages import AddStage, AddTwiceComposite, FanOutFilterStage


def test_property_style_declaration():
    stage = AddStage(2)
    assert stage.name == "add_2" and stage.resources == Resources(cpus=1.0) and stage.batch_size == 1


def test_dataclass_field_style_declaration():
    stage = FanOutFilterStage(name="fan", resources=Resources(cpus=0.5))
    assert stage.name == "fan" and stage.resources.cpus == 0.5


def test_with_returns_configured_copy_for_property_style():
    stage = AddStage(1)
    copy = stage.with_(name="renamed", resources=Resources(cpus=0.25), batch_size=16)
    assert (copy.name, copy.resources.cpus, copy.batch_size) == ("renamed", 0.25, 16)
    assert (stage.name, stage.batch_size) == ("add_1", 1)
    assert isinstance(copy, AddStage) and copy.k == 1


def test_with_returns_configured_copy_for_dataclass_style_and_keeps_instance_fields():
    stage = FanOutFilterStage(name="custom")
    copy = stage.with_(batch_size=4)
    assert copy.name == "custom" and copy.batch_size == 4
    again = copy.with_(name="second")
    assert again.name == "second" and again.batch_size == 4 and type(again) is type(copy)
    assert stage.batch_size == 1


def test_nested_composites_expand_in_order():
    stages = expand_stages([AddTwiceComposite(), AddStage(9)])
    assert [s.name for s in stages] == ["add_1", "add_2", "add_3", "add_9"]
