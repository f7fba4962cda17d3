"""Class names of each dataset, in label-index order (the 0-based labels of the annotation CSVs)."""
DFEW_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
FERV39K_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
MAFW_CLASSES = ("anger", "anxiety", "contempt", "disappointment", "disgust", "fear", "happiness",
                "helplessness", "neutral", "sadness", "surprise")
