"""ddescent's SLURM launcher as a Hydra plugin: Hydra instantiates launchers only from the `hydra_plugins`
namespace, and finds this one there by scanning it (conf/hydra/launcher/slurm.yaml names it). The launcher
itself lives in ddescent.slurm."""

from ddescent.slurm import SlurmLauncher as _SlurmLauncher


class SlurmLauncher(_SlurmLauncher):
    __doc__ = _SlurmLauncher.__doc__
