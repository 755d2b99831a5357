// Proxy auto-configuration for explicit mode (`classgate run --mode regular`): devices fetch this file
// (Windows/macOS/Android/iOS "automatic proxy configuration URL", or WPAD, see docs/deploy.md) and
// send web traffic to the gateway. EDIT the address and port to your gateway's.
//
// In transparent mode no PAC file is needed: the gateway's firewall sends traffic to the proxy.
function FindProxyForURL(url, host) {
    // Names without a dot and the school's own networks: straight to them (printers, the gateway's
    // own pages, the school server). isInNet() only on address literals: on a name it would make
    // a DNS lookup for every request. EDIT the networks to the school's.
    if (isPlainHostName(host) || shExpMatch(host, "*.local")) {
        return "DIRECT";
    }
    if (/^\d+\.\d+\.\d+\.\d+$/.test(host) &&
        (isInNet(host, "10.0.0.0", "255.0.0.0") ||
         isInNet(host, "172.16.0.0", "255.240.0.0") ||
         isInNet(host, "192.168.0.0", "255.255.0.0") ||
         isInNet(host, "127.0.0.0", "255.0.0.0"))) {
        return "DIRECT";
    }
    // Everything else through classgate. No "; DIRECT" fallback: if the gateway is down the web is
    // closed, never unfiltered.
    return "PROXY 10.10.0.1:8080";
}
