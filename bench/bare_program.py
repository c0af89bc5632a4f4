"""Baseline for bench/program_eval.py: the same number of plain droplets,
no VPC, firewall, tags, keys or cloud-init."""

import pulumi
import pulumi_digitalocean as do

hosts = pulumi.Config("hardened-do").require_object("hosts")
for host in hosts:
    do.Droplet(f"{host['name']}-droplet", name=host["name"], region="fra1", image="ubuntu-24-04-x64", size="s-1vcpu-1gb")
