"""Register espnet-lp's components into ESPnet's ASR task (idempotent).

Called automatically right after ``espnet2.tasks.asr`` is imported (see
:mod:`espnet_lp.utils.import_hooks`), in every process that imported ``espnet_lp``, including
DDP workers started with ``spawn``.
"""


def register() -> None:
    """Add ``model: lp_espnet`` to ESPnet's ASR model choices."""
    import espnet2.tasks.asr as asr_task

    from espnet_lp.asr.espnet_model import ESPnetLPASRModel

    asr_task.model_choices.classes.setdefault("lp_espnet", ESPnetLPASRModel)
