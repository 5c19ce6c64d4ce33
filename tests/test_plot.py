"""cnncourse.plot: every plot draws what it is given and rejects bad shapes."""

import pytest
import torch
from matplotlib.figure import Figure

from cnncourse import data, plot
from cnncourse.train import History


def test_plot_history_one_and_many():
    h = History(
        train_loss=[2.0, 1.0], train_acc=[0.3, 0.6], val_loss=[2.1, 1.2], val_acc=[0.2, 0.5]
    )
    fig = plot.plot_history(h)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 2  # train + val
    fig = plot.plot_history({"a": h, "b": h}, title="two runs")
    assert len(fig.axes[1].lines) == 4
    with pytest.raises(ValueError, match="histories"):
        plot.plot_history({})


def test_show_images_grey_colour_and_predictions():
    digits = data.load_dataset("digits", "test")
    fig = plot.show_images(digits.images[:10], digits.labels[:10], dataset=digits, ncols=5)
    assert len(fig.axes) == 10 and fig.axes[0].get_title() == digits.classes[digits.labels[0]]
    sprites = data.load_dataset("sprites", "test", num_samples=6)
    wrong = (sprites.labels + 1) % 10
    fig = plot.show_images(sprites.images, sprites.labels, predictions=wrong, dataset=sprites)
    assert fig.axes[0].title.get_color() == "red"
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)
    with pytest.raises(ValueError, match="images"):
        plot.show_images(torch.zeros(3, 8, 8))


def test_filters_feature_maps_and_bars():
    fig = plot.show_filters(torch.randn(6, 3, 5, 5))
    assert sum(bool(ax.images) for ax in fig.axes) == 6
    fig = plot.show_filters(torch.randn(4, 16, 3, 3))
    assert fig.axes[0].images[0].get_array().shape == (3, 3)
    fig = plot.show_feature_maps(torch.randn(1, 40, 7, 7), max_maps=12)
    assert sum(bool(ax.images) for ax in fig.axes) == 12
    with pytest.raises(ValueError, match="one image"):
        plot.show_feature_maps(torch.randn(2, 4, 7, 7))
    fig = plot.bar_chart({"LeNet": 61_706, "AlexNet": 61_100_840}, log=True)
    assert len(fig.axes[0].patches) == 2


def test_conv_volume_draws_every_channel_filter_and_map():
    fig = plot.conv_volume(in_channels=3, size=6, kernel_size=3, out_channels=2)
    ax = fig.axes[0]
    # 3 input cards + the window's front and back faces + 2 filters x 3 cards + 2 maps + 2 values
    assert len(ax.patches) == 3 + 2 + 2 * 3 + 2 + 2
    labels = " ".join(t.get_text() for t in ax.texts)
    assert "3 × 6 × 6" in labels and "3 × 3 × 3" in labels and "2 × 4 × 4" in labels
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # opaque: the same in dark themes
    fig = plot.conv_volume(in_channels=4, size=7, kernel_size=3, out_channels=3, stride=2)
    assert "3 × 3 × 3" in " ".join(t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="kernel_size"):
        plot.conv_volume(size=3, kernel_size=5)
    with pytest.raises(ValueError, match="in_channels"):
        plot.conv_volume(in_channels=0)


def test_ilsvrc_chart_highlights_and_cites():
    fig = plot.ilsvrc_chart("VGG")
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == len(plot.ILSVRC_WINNERS) == 7
    heights = {e.name: b.get_height() for e, b in zip(plot.ILSVRC_WINNERS, bars, strict=True)}
    assert heights["AlexNet"] == 16.4 and heights["ResNet"] == 3.57
    colours = {e.name: b.get_facecolor() for e, b in zip(plot.ILSVRC_WINNERS, bars, strict=True)}
    assert colours["VGG"] != colours["AlexNet"] == colours["ResNet"]
    assert all(e.source for e in plot.ILSVRC_WINNERS)
    assert [e.year for e in plot.ILSVRC_WINNERS] == sorted(e.year for e in plot.ILSVRC_WINNERS)
    assert len(plot.ilsvrc_chart(["AlexNet", "ResNet"]).axes) == 1
    with pytest.raises(ValueError, match="highlight='LeNet'"):
        plot.ilsvrc_chart("LeNet")


def test_cost_chart_places_each_network_by_macs_and_error():
    costs = {"AlexNet": (61_100_840, 714_188_480), "VGG-16": (138_357_544, 15_470_264_320),
             "GoogLeNet": (6_998_552, 1_582_671_872)}  # fmt: skip
    fig = plot.cost_chart(costs)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (points,) = ax.collections
    xy = points.get_offsets()
    assert xy[:, 0].tolist() == pytest.approx([0.714188480, 15.470264320, 1.582671872])
    assert xy[:, 1].tolist() == [16.4, 7.3, 6.7]  # AlexNet, VGG (by its family name), GoogLeNet
    sizes = points.get_sizes()
    assert sizes[1] == sizes.max() and sizes[0] / sizes[2] == pytest.approx(61_100_840 / 6_998_552)
    assert ax.get_xscale() == "log"
    labels = " ".join(t.get_text() for t in ax.texts)
    assert "138.4M parameters" in labels and "1.58 GMACs" in labels and "VGG-16" in labels
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # opaque: the same in dark themes


@pytest.mark.parametrize(
    "costs",
    [{}, {"LeNet": (61_706, 416_520)}, {"AlexNet": (61_100_840,)}, {"AlexNet": (0, 5)},
     {"AlexNet": (1.5e6, 5)}, [("AlexNet", (1, 2))]],
)  # fmt: skip
def test_cost_chart_bad_input_names_costs(costs):
    with pytest.raises(ValueError, match="costs"):
        plot.cost_chart(costs)
