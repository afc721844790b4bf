"""Training FashionFlow: videos -> cached latents (`prepare`), then the paper's training loop (`train`).

python -m fashionflow prepare VIDEOS -o DATA --model MODEL
python -m fashionflow train DATA -o RUN --model MODEL
accelerate launch -m fashionflow train DATA -o RUN --model MODEL   # several GPUs / machines
"""

from .errors import DataError, OutputFolderError, TrainingStopped

__all__ = ["DataError", "OutputFolderError", "TrainingStopped"]
