"""Stage 0, what every stage uses: errors, the registries, declared model abilities, the run config,
the MedMNIST catalogue, devices, width sizing, the recorded quantities' names, atomic files, and the
old-import-path aliases. Imports nothing from the other stages."""
