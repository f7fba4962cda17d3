"""What every layer of the project uses: atomic file output, progress lines with ETA, the torch.distributed
helpers, device and precision choice. Imports no other package of the project."""
