# Sourced by the scripts: the environment every mpirun of ours needs on a workstation or CI box.
# Open MPI refuses to run as root without these (containers and CI runners often are root), and
# oversubscription lets -np 4 run on a 2-core machine.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Stay on shared memory and loopback TCP; no probing of absent fabrics (quieter, faster start).
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
# nvcc from NVIDIA's toolkit, where present.
[ -d /usr/local/cuda/bin ] && case ":$PATH:" in *":/usr/local/cuda/bin:"*) ;; *) export PATH="$PATH:/usr/local/cuda/bin";; esac
# Debian's python3 (with python3-h5py), not a pyenv or venv interpreter earlier on PATH.
export IPFSA_PYTHON=${IPFSA_PYTHON:-/usr/bin/python3}
IPFSA_JOBS=${IPFSA_JOBS:-$(nproc)}
