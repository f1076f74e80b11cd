"""The accuracy plot names what the task measures: on the axis when it fits, under the title when it
would be clipped beside the plot (the captioner's "words right (train, teacher-forced), ...")."""

from __future__ import annotations

from explorer.engine.tasks import get_task
from explorer.ui.curves import AXIS_CHARS, CurvesView


def test_a_long_accuracy_name_goes_under_the_title_a_short_one_on_the_axis(qtbot) -> None:  # noqa: ANN001
    curves = CurvesView()
    qtbot.addWidget(curves)
    item = curves.acc_plot.getPlotItem()
    caption, sequence = get_task("caption"), get_task("sequence")
    assert len(caption.accuracy_name) > AXIS_CHARS >= len(sequence.accuracy_name)
    curves.set_task(caption)
    assert item.getAxis("left").labelText == "fraction"
    assert "words right (train, teacher-forced)" in item.titleLabel.text
    curves.set_task(sequence)  # another run: back on the axis, the title plain again
    assert item.getAxis("left").labelText == "texts read exactly"
    assert "texts" not in item.titleLabel.text and item.titleLabel.text.startswith("Accuracy")
