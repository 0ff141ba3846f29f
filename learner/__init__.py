"""The learner: networks, trainers, reward signals, model export, checkpoints, the LearnerActor."""
