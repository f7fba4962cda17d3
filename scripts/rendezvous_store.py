"""Host the rendezvous store of a torchrun job apart from its agents (PyTorch's TCPStore, on every interface).

With `--rdzv_backend c10d`, torchrun's agents keep using the store the rendezvous ran on: the agent that hosts it
takes it down when it dies, and every other agent then fails (RendezvousConnectionError) and stops its processes.
Hosted here, on a machine (or in a process) that outlives the agents, every agent is a client, and any of them
may die without taking the others down. Start it first, then every machine's torchrun with
`--rdzv_backend c10d --rdzv_endpoint HOST:PORT --rdzv_conf is_host=false` (HOST: this machine's address):

    python scripts/rendezvous_store.py --port 29400

It serves until Ctrl-C or SIGTERM. docs/PREDICT.md, "How it works", tells the whole set-up (a machine that
dies, and the rendezvous store).
"""
import argparse
import signal

import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser(description="Host a torchrun job's rendezvous store apart from its agents.")
    parser.add_argument("--port", type=int, default=29400, help="the port of --rdzv_endpoint (default 29400)")
    args = parser.parse_args()
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)  # the store's threads never see them; sigwait below does
    try:
        store = dist.TCPStore("127.0.0.1", args.port, is_master=True, wait_for_workers=False)
    except RuntimeError as error:
        parser.error(f"--port {args.port}: cannot serve the store there ({' '.join(str(error).split())[:200]})")
    print(f"rendezvous store serving on port {store.port} (every interface); Ctrl-C or SIGTERM ends it", flush=True)
    signal.sigwait(stops)


if __name__ == "__main__":
    main()
