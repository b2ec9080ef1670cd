# Kernel modules PID 1 loads at every boot, in this order (dependencies are
# resolved from modules.dep).
xen-privcmd
xenfs
xen-evtchn
xen-gntdev
xen-gntalloc
bridge
tun
loop
