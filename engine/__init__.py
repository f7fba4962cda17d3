"""Training and evaluation: one epoch, the test views' evaluation and metrics, the schedule, SDL, the training
state, bad clips, and the paper's published results. Import from the module that defines a name (engine.train's
train_one_epoch, engine.evaluate's evaluate, ...): importing engine.published does not import PyTorch."""
