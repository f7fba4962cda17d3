"""Class names of each dataset, in label-index order (the 0-based labels of the annotation CSVs)."""
DFEW_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
FERV39K_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
MAFW_CLASSES = ("anger", "anxiety", "contempt", "disappointment", "disgust", "fear", "happiness",
                "helplessness", "neutral", "sadness", "surprise")
# Static (image) datasets, 0-based in the order of their official 1-based or 0-based labels.
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
AFFECTNET8_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
AFFECTNET7_CLASSES = AFFECTNET8_CLASSES[:7]
