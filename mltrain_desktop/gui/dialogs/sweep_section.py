"""The submit dialog's "Sweep" section: a hyperparameter space (a distribution per script
argument), the sampler, the early-termination policy and the limits.

:meth:`SweepSection.form` gives a plain dict (None when the section is off);
:func:`sweep_problems` checks it without building anything, and :func:`build_hyperdrive`
(on a worker) turns it and the run's estimator into the SDK's ``HyperDriveConfig``, whose own
checks (a grid over a continuous distribution, Bayesian with a policy, limits) come back as
the error the dialog shows.
"""
from __future__ import annotations

import ast

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..resources import icon

DISTRIBUTIONS = {  # name -> (parameters as typed, an example)
    "choice": ("values, comma-separated", "32, 64, 128"),
    "randint": ("upper (0 .. upper-1)", "10"),
    "uniform": ("low, high", "0.1, 0.5"),
    "quniform": ("low, high, q", "16, 128, 16"),
    "loguniform": ("low, high (exponents of e)", "-6, -1"),
    "qloguniform": ("low, high, q (exponents of e)", "0, 5, 1"),
    "normal": ("mu, sigma", "0, 1"),
    "qnormal": ("mu, sigma, q", "10, 2, 1"),
    "lognormal": ("mu, sigma", "0, 1"),
    "qlognormal": ("mu, sigma, q", "0, 1, 1"),
}
SAMPLERS = ("Random", "Grid", "Bayesian")
POLICIES = ("None", "Bandit", "Median stopping", "Truncation selection")
GOALS = ("Maximize", "Minimize")


def parse_values(text: str) -> list:
    """'32, 64, adam' -> [32, 64, 'adam']: numbers where they read as numbers, else text."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = ast.literal_eval(part)
        except (ValueError, SyntaxError):
            value = part
        out.append(value if isinstance(value, (int, float, str, bool)) else part)
    return out


def sweep_problems(sweep: dict, fixed_arguments=()) -> list[str]:
    """What is wrong with the section's form, in words; empty when it can be built."""
    problems = []
    space = sweep.get("space") or []
    if not space:
        problems.append("Sweep: add at least one argument to tune (name, distribution, parameters).")
    names = [row.get("name", "").strip() for row in space]
    for row, name in zip(space, names):
        if not name:
            problems.append("Sweep: every tuned argument needs a name, e.g. --learning-rate.")
        elif names.count(name) > 1:
            problems.append(f"Sweep: {name!r} is tuned twice; keep one row per argument.")
        elif name in fixed_arguments:
            problems.append(f"Sweep: {name!r} is also a fixed script argument; remove it from one of the two.")
        if row.get("distribution") not in DISTRIBUTIONS:
            problems.append(f"Sweep: unknown distribution {row.get('distribution')!r} for {name or 'an argument'}.")
        elif not parse_values(row.get("parameters", "")):
            usage, example = DISTRIBUTIONS[row["distribution"]]
            problems.append(f"Sweep: {name or 'an argument'} needs {row['distribution']}'s {usage}, e.g. {example}.")
    if not (sweep.get("primary_metric") or "").strip():
        problems.append("Sweep: give the primary metric, the name the script logs with run.log(), "
                        "e.g. validation_acc.")
    return sorted(set(problems), key=problems.index)


def _expression(row: dict):
    from ...train.hyperdrive.distributions import parse_expression
    values = parse_values(row.get("parameters", ""))
    spec = [row["distribution"], [values] if row["distribution"] == "choice" else values]
    return parse_expression(spec, where=row["name"].strip())


def _policy(sweep: dict):
    from ...train import hyperdrive as hd
    p = sweep.get("policy") or {}
    kind, interval, delay = p.get("kind", "None"), int(p.get("evaluation_interval", 1)), int(p.get("delay", 0))
    if kind == "Bandit":
        return hd.BanditPolicy(evaluation_interval=interval, slack_factor=float(p.get("slack_factor", 0.1)),
                               delay_evaluation=delay)
    if kind == "Median stopping":
        return hd.MedianStoppingPolicy(evaluation_interval=interval, delay_evaluation=delay)
    if kind == "Truncation selection":
        return hd.TruncationSelectionPolicy(int(p.get("truncation_percentage", 20)), evaluation_interval=interval,
                                            delay_evaluation=delay)
    return None


def build_hyperdrive(estimator, sweep: dict):
    """The SDK's HyperDriveConfig for ``estimator`` and the section's form; raises on bad input."""
    from ...train import hyperdrive as hd
    space = {row["name"].strip(): _expression(row) for row in sweep["space"]}
    sampling = {"Random": hd.RandomParameterSampling, "Grid": hd.GridParameterSampling,
                "Bayesian": hd.BayesianParameterSampling}[sweep.get("sampler", "Random")](space)
    goal = hd.PrimaryMetricGoal.MINIMIZE if sweep.get("goal") == "Minimize" else hd.PrimaryMetricGoal.MAXIMIZE
    return hd.HyperDriveConfig(run_config=estimator, hyperparameter_sampling=sampling, policy=_policy(sweep),
                               primary_metric_name=sweep["primary_metric"].strip(), primary_metric_goal=goal,
                               max_total_runs=int(sweep.get("max_total_runs", 8)),
                               max_concurrent_runs=int(sweep.get("max_concurrent_runs", 2)),
                               max_duration_minutes=float(sweep.get("max_duration_minutes", 60)))


class SweepSection(QGroupBox):
    """Checkable: off means an ordinary run."""

    def __init__(self, parent=None):
        super().__init__("Sweep (hyperparameter tuning)", parent)
        self.setCheckable(True)
        self.setChecked(False)
        self.space = QTableWidget(0, 3)
        self.space.setHorizontalHeaderLabels(["Argument", "Distribution", "Parameters"])
        self.space.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.space.verticalHeader().setVisible(False)
        self.space.setMinimumHeight(90)
        add = QPushButton(icon("add"), "Add parameter")
        add.clicked.connect(lambda: self.add_parameter())
        remove = QPushButton(icon("delete"), "Remove")
        remove.clicked.connect(lambda: self.space.removeRow(self.space.currentRow()))
        self.sampler = QComboBox()
        self.sampler.addItems(SAMPLERS)
        self.policy = QComboBox()
        self.policy.addItems(POLICIES)
        self.interval, self.delay, self.truncation = QSpinBox(), QSpinBox(), QSpinBox()
        self.interval.setRange(1, 1000)
        self.delay.setRange(0, 10000)
        self.truncation.setRange(1, 99)
        self.truncation.setValue(20)
        self.slack = QDoubleSpinBox()
        self.slack.setRange(0.0, 10.0)
        self.slack.setSingleStep(0.05)
        self.slack.setValue(0.1)
        self.policy.currentTextChanged.connect(self._policy_changed)
        self.metric_edit = QLineEdit()
        self.metric_edit.setPlaceholderText("the name the script logs, e.g. validation_acc")
        self.goal = QComboBox()
        self.goal.addItems(GOALS)
        self.total, self.concurrent, self.minutes = QSpinBox(), QSpinBox(), QSpinBox()
        self.total.setRange(1, 1000)
        self.total.setValue(8)
        self.concurrent.setRange(1, 100)
        self.concurrent.setValue(2)
        self.minutes.setRange(1, 60 * 24 * 30)
        self.minutes.setValue(60)
        self._layout(add, remove)
        self._policy_changed(self.policy.currentText())

    def _layout(self, add, remove) -> None:
        # every layout hangs from self.body before widgets go in, so Qt parents each widget as it
        # is added (a label added to a parentless layout can be freed with its Python wrapper)
        self.body = QWidget(self)
        lay = QVBoxLayout(self)
        lay.addWidget(self.body)
        inner = QVBoxLayout(self.body)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.space)
        buttons = QHBoxLayout()
        inner.addLayout(buttons)
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        form = QFormLayout()
        inner.addLayout(form)
        form.addRow("Sampler", self.sampler)
        policy_row, metric_row, limits = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        form.addRow("Early termination", policy_row)
        form.addRow("Primary metric", metric_row)
        form.addRow("Limits", limits)
        policy_row.addWidget(self.policy)
        for label, w in (("every", self.interval), ("after", self.delay), ("slack", self.slack),
                         ("%", self.truncation)):
            policy_row.addWidget(QLabel(label, self.body))
            policy_row.addWidget(w)
        metric_row.addWidget(self.metric_edit, 1)
        metric_row.addWidget(self.goal)
        for label, w in (("runs", self.total), ("at once", self.concurrent), ("minutes", self.minutes)):
            limits.addWidget(w)
            limits.addWidget(QLabel(label, self.body))
        self.body.setVisible(False)
        self.toggled.connect(self.body.setVisible)  # off: one line in the dialog

    def _policy_changed(self, kind: str) -> None:
        self.interval.setEnabled(kind != "None")
        self.delay.setEnabled(kind != "None")
        self.slack.setEnabled(kind == "Bandit")
        self.truncation.setEnabled(kind == "Truncation selection")

    def add_parameter(self, name: str = "", distribution: str = "choice", parameters: str = "") -> int:
        r = self.space.rowCount()
        self.space.insertRow(r)
        self.space.setItem(r, 0, QTableWidgetItem(name))
        combo = QComboBox()
        combo.addItems(list(DISTRIBUTIONS))
        combo.setCurrentText(distribution)
        combo.currentTextChanged.connect(lambda d, r=r: self._hint(r, d))
        self.space.setCellWidget(r, 1, combo)
        self.space.setItem(r, 2, QTableWidgetItem(parameters))
        self._hint(r, distribution)
        return r

    def _hint(self, r: int, distribution: str) -> None:
        item = self.space.item(r, 2)
        if item is not None and distribution in DISTRIBUTIONS:
            usage, example = DISTRIBUTIONS[distribution]
            item.setToolTip(f"{distribution}: {usage}, e.g. {example}")

    def form(self) -> dict | None:
        if not self.isChecked():
            return None
        rows = []
        for r in range(self.space.rowCount()):
            name, params = self.space.item(r, 0), self.space.item(r, 2)
            rows.append({"name": name.text() if name else "", "distribution": self.space.cellWidget(r, 1).currentText(),
                         "parameters": params.text() if params else ""})
        return {"space": rows, "sampler": self.sampler.currentText(),
                "policy": {"kind": self.policy.currentText(), "evaluation_interval": self.interval.value(),
                           "delay": self.delay.value(), "slack_factor": self.slack.value(),
                           "truncation_percentage": self.truncation.value()},
                "primary_metric": self.metric_edit.text().strip(), "goal": self.goal.currentText(),
                "max_total_runs": self.total.value(), "max_concurrent_runs": self.concurrent.value(),
                "max_duration_minutes": self.minutes.value()}
