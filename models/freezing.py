"""Which parameters train during fine-tuning (docs/MODEL.md section 5)."""
TRAINABLE_NAME_PARTS = ('temporal_embedding', 'ln_post', 'head', 'Adapter', 'prompt')


def freeze_for_finetuning(model, fix_lgp=False):
    """Set requires_grad per parameter name; with `fix_lgp` the prompt generators are frozen too
    (the adapters stay trainable). Returns (n_total, n_trainable)."""
    for name, param in model.named_parameters():
        trainable = any(part in name for part in TRAINABLE_NAME_PARTS)
        if fix_lgp and 'prompt' in name and 'Adapter' not in name:
            trainable = False
        param.requires_grad_(trainable)
    print(describe_parameters(model))
    return parameter_counts(model)


def parameter_counts(model):
    """(total, trainable) parameter counts."""
    return (sum(p.numel() for p in model.parameters()),
            sum(p.numel() for p in model.parameters() if p.requires_grad))


def describe_parameters(model) -> str:
    """The parameter counts as the original prints them."""
    n_total, n_trainable = parameter_counts(model)
    return f'Number of total parameters: {n_total / 1e6:.2f} M, trainable parameters: {n_trainable / 1e6:.2f} M'
