import pytest

from curator_core import Resources


def test_defaults_ask_for_one_cpu_and_no_gpu():
    r = Resources()
    assert r.cpus == 1.0 and not r.requires_gpu and r.num_gpus(None) == 0


@pytest.mark.parametrize("field", ["cpus", "gpu_memory_gb", "gpus", "nvdecs", "nvencs"])
def test_negative_values_are_rejected(field):
    with pytest.raises(ValueError, match=field):
        Resources(**{field: -1})


def test_gpu_memory_and_gpus_exclude_each_other_with_a_message_saying_which_to_choose():
    with pytest.raises(ValueError, match="either gpu_memory_gb .* or gpus"):
        Resources(gpu_memory_gb=10, gpus=2)


def test_entire_gpu_cannot_be_combined_with_other_gpu_requests():
    with pytest.raises(ValueError, match="entire_gpu"):
        Resources(entire_gpu=True, gpu_memory_gb=4)


def test_gpu_memory_becomes_a_fraction_of_the_real_device():
    assert Resources(gpu_memory_gb=20).num_gpus(80.0) == pytest.approx(0.25)


def test_more_memory_than_one_gpu_is_an_error():
    with pytest.raises(ValueError, match="more than one GPU has"):
        Resources(gpu_memory_gb=100).num_gpus(80.0)


def test_unknown_gpu_memory_is_an_error_not_a_guess():
    with pytest.raises(RuntimeError, match="no GPU memory could be read"):
        Resources(gpu_memory_gb=8).num_gpus(None)


def test_entire_gpu_and_multi_gpu_requests():
    assert Resources(entire_gpu=True).num_gpus(None) == 1.0
    assert Resources(gpus=4).num_gpus(None) == 4.0
    with pytest.raises(ValueError, match="whole GPUs"):
        Resources(gpus=0.5)


def test_codec_units_are_custom_resources():
    assert Resources(nvdecs=1, nvencs=2).custom_resources() == {"nvdecs": 1.0, "nvencs": 2.0}
    assert Resources().custom_resources() == {}
