"""Register espnet-lp's components into ESPnet's ASR task (idempotent).

Called automatically right after ``espnet2.tasks.asr`` is imported (see
:mod:`espnet_lp.utils.import_hooks`), in every process that imported ``espnet_lp``, including
DDP workers started with ``spawn``.
"""


def register() -> None:
    """Add ``model: lp_espnet`` to ESPnet's ASR model choices, and check ``model_conf`` keys
    before ESPnet builds a model (a typo, or an LP option under ``model: espnet``, is then a
    message naming the key and the valid ones instead of a bare ``TypeError``)."""
    import espnet2.tasks.asr as asr_task

    from espnet_lp.asr.espnet_model import ESPnetLPASRModel

    asr_task.model_choices.classes.setdefault("lp_espnet", ESPnetLPASRModel)
    task = asr_task.ASRTask
    if not getattr(task.build_model, "_espnet_lp_checked", False):
        task.build_model = classmethod(_checked_build_model(task.build_model.__func__))


def _checked_build_model(build_model):
    def checked(cls, args):
        from espnet2.tasks.asr import model_choices

        from espnet_lp.asr.conf_check import LP_MODEL_CONF, check_model_conf

        conf = getattr(args, "model_conf", None)
        name = getattr(args, "model", None) or "espnet"
        # only our model, or LP options given to another: stock configs build as in stock
        # ESPnet (some model classes take keys their signature does not show)
        if isinstance(conf, dict) and name in model_choices.classes and (
                name == "lp_espnet" or any(k in LP_MODEL_CONF for k in conf)):
            check_model_conf(name, model_choices.get_class(name), conf)
        return build_model(cls, args)

    checked._espnet_lp_checked = True
    checked.__doc__ = build_model.__doc__
    return checked
