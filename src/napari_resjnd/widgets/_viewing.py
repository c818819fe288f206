"""The viewing-condition fields both visibility widgets show: viewing distance,
display diagonal and resolution, peak luminance, and the pixels per degree they
give. The numbers mean what :class:`~napari_resjnd.core.visibility.viewing.ViewingConditions`
says; an impossible value is one status line naming it."""

from __future__ import annotations

from magicgui.widgets import Container, FloatSpinBox, Label, LineEdit

from ..core.errors import ResJNDError
from ..core.visibility.viewing import DEFAULT_VIEWING, ViewingConditions


class ViewingFields(Container):
    """Distance (cm), diagonal (inches), resolution (WxH), peak luminance (cd/m^2)."""

    def __init__(self, viewing: ViewingConditions = DEFAULT_VIEWING) -> None:
        w, h = viewing.resolution
        self.distance = FloatSpinBox(label="viewing distance (cm)", min=1, max=1000, step=5, value=viewing.distance_cm)
        self.diagonal = FloatSpinBox(label="display diagonal (in)", min=1, max=300, step=1, value=viewing.diagonal_in)
        self.resolution = LineEdit(label="display pixels (WxH)", value=f"{w}x{h}")
        self.peak = FloatSpinBox(
            label="peak luminance (cd/m²)", min=1, max=10000, step=10, value=viewing.peak_luminance
        )
        self.ppd = Label(label="pixels per degree", value=f"{viewing.ppd:.1f}")
        super().__init__(widgets=[self.distance, self.diagonal, self.resolution, self.peak, self.ppd], labels=True)
        for field in (self.distance, self.diagonal, self.resolution, self.peak):
            field.changed.connect(self._update_ppd)

    def value_or_error(self) -> ViewingConditions:
        """The conditions the fields give; ResJNDError (one line naming the field) otherwise."""
        text = str(self.resolution.value).lower().replace("×", "x").split("x")
        try:
            w, h = (int(v) for v in text)
        except ValueError:
            got = self.resolution.value
            raise ResJNDError(f"display pixels must be WIDTHxHEIGHT (1920x1080), got {got!r}") from None
        return ViewingConditions(
            distance_cm=float(self.distance.value),
            diagonal_in=float(self.diagonal.value),
            resolution=(w, h),
            peak_luminance=float(self.peak.value),
        )

    def fold_into(self, dock: Container, row: int) -> None:
        """Put the fields in a section "Viewing conditions" at ``row`` of ``dock``'s body,
        across the dock's width (a click folds it away)."""
        from superqt import QCollapsible

        section = QCollapsible("Viewing conditions")
        section.setObjectName("section-viewing-conditions")
        section.addWidget(self.native)
        section.expand(animate=False)
        dock.body.layout().insertWidget(row, section)

    def set(self, viewing: ViewingConditions) -> None:
        """Show ``viewing`` (a resumed session's recorded conditions)."""
        w, h = viewing.resolution
        self.distance.value, self.diagonal.value = viewing.distance_cm, viewing.diagonal_in
        self.resolution.value, self.peak.value = f"{w}x{h}", viewing.peak_luminance
        self._update_ppd()

    def _update_ppd(self, _=None) -> None:
        try:
            self.ppd.value = f"{self.value_or_error().ppd:.1f}"
        except ResJNDError as e:
            self.ppd.value = f"— ({e})"
