/// The three example configs of the seed talk (2006), verbatim including
/// the trailing spaces of the slides: test input for DomainConfig and
/// Toolstack (never linked into the executable).
public enum SeedConfigs {
    public static let debian1 = """
        kernel = '/boot/xendomU/vmlinuz-2.6.16.29-xenU'  
        memory = 256  
        name = "debian1"  
        vif = [ '' ]  
        disk = [ 'file:/mnt/xensys2-root.img,hda1,w',  
                 'file:/mnt/xensys2-swap.img,hda2,w',  
                 'phy:/dev/hdc,hdb,r' ]  
        root = "/dev/hda1 ro"  
        extra = "4"

        """

    public static let netbsd = """
        kernel = "/boot/xendomU/netbsd-XEN3_DOMU"  
        memory = 64  
        name = "netbsd"  
        vif = [ 'mac=00:11:85:13:37:DD, bridge=xenbr0' ]  
        disk = [ 'file:/mnt/netbsd-root.img,0x3,w',  
                 'phy:/dev/hdc,cd0a,r' ]  
        root = "/dev/wd0d"

        """

    public static let freebsd = """
        kernel = "/boot/xendomU/freebsd-XENU_INSTALL"  
        memory = 256  
        name = "freebsd-xen-INSTALL"  
        vif = [ '' ]  
        disk = ['file:/mnt/freebsd/freebsd-root.img,hda1,w']  
        extra = "4"  
        extra = "boot_verbose"  
        extra += ",boot_single"  
        extra += ",vfs.root.mountfrom=ufs:/dev/md0"  
        extra += ",kern.hz=100"

        """
}
