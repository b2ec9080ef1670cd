/// Where the backend side of one device is in the xenbus handshake.
public enum BackendPhase: Sendable, Equatable, CustomStringConvertible {
    /// Adopted; features not yet published.
    case initialising
    /// Features published; waiting for the frontend's rings.
    case initWait
    /// Rings mapped, data path running.
    case connected
    /// Shutting down (frontend asked, or a fatal error).
    case closing
    /// Disconnected.
    case closed

    /// The value this phase writes to the backend's `state` node.
    public var xenbusState: XenbusState {
        switch self {
        case .initialising: return .initialising
        case .initWait: return .initWait
        case .connected: return .connected
        case .closing: return .closing
        case .closed: return .closed
        }
    }

    public var description: String { xenbusState.description }
}

/// What the backend read from the frontend's `state` node.
public enum FrontendObservation: Sendable, Equatable {
    /// No `state` node (frontend directory gone, domain destroyed), or the
    /// frontend wrote Unknown (0).
    case vanished
    case state(XenbusState)
    /// Text that is not a xenbus state.
    case invalid(String)

    /// Classifies a `state` node's value.
    public init(storeValue: String?) {
        guard let storeValue else {
            self = .vanished
            return
        }
        guard let state = XenbusState(storeValue: storeValue) else {
            self = .invalid(storeValue)
            return
        }
        self = state == .unknown ? .vanished : .state(state)
    }
}

/// The next thing a backend device does.
public enum LifecycleStep: Sendable, Equatable {
    /// Nothing to do.
    case stay
    /// (Re)probe, publish features, switch to InitWait; disconnects first
    /// if connected (the frontend reset).
    case offerInitWait
    /// Read the frontend's rings, connect, publish, switch to Connected.
    case connect
    /// Switch to Closing; the data path keeps serving until the frontend
    /// is Closed (it may still wait for responses).
    case beginClosing
    /// Disconnect, switch to Closed; retire the device if the toolstack set
    /// `online` to 0 (it is being unplugged).
    case close
    /// The frontend is gone: disconnect, Closed, retire.
    case vanish
    /// `xenbus_dev_fatal`: disconnect, write the `error` node, Closing.
    case fail(XenBusError)
    /// A restarted backend finds the device Connected with a live
    /// frontend: map the ring again, bind the frontend's port again and go
    /// on from the shared indices and the ring's journal, writing nothing
    /// the guest would notice.
    case resume
}

/// The backend half of the xenbus handshake as a pure function, after Linux
/// xen-blkback/xen-netback `frontend_changed`:
///
///     frontend        backend Initialising  InitWait   Connected  Closing  Closed
///     Initialising    offer InitWait        stay       reset→Init stay     reconnect (InitWait)
///     Initialised     jump (error)          connect*   stay       stay     jump (error)
///     Connected       jump (error)          connect    stay       stay     jump (error)
///     Closing         offer InitWait†       Closing    Closing    stay     stay
///     Closed          offer InitWait†       close      close      close    stay
///     vanished/0      missing (error)       vanish     vanish     vanish   vanish
///     Reconfiguring/ed, garbage: error
///
/// `*` only with ``FrontendConnectTrigger/initialisedOrConnected``, else
/// stay. `†` at adoption the backend still publishes its features first and
/// then re-evaluates, as Linux probes before its first `frontend_changed`.
/// A frontend InitWait is treated like Initialising.
///
/// The frontend going Initialising → Connected directly is netfront's
/// normal handshake (it connects as soon as the backend is in InitWait), so
/// it is no jump; a jump is a frontend claiming to have connected while the
/// backend never offered InitWait in this cycle (before adoption, or after
/// Closed without passing through Initialising).
public enum BackendLifecycle {
    public static func step(
        backend: BackendPhase, frontend: FrontendObservation, trigger: FrontendConnectTrigger,
        frontendStatePath path: String
    ) -> LifecycleStep {
        let state: XenbusState
        switch frontend {
        case .invalid(let text):
            return .fail(.frontendStateInvalid(path: path, value: text))
        case .vanished:
            if backend == .initialising {
                return .fail(.frontendMissing(path: parentPath(path)))
            }
            return .vanish
        case .state(let value):
            state = value
        }

        switch state {
        case .unknown:
            // FrontendObservation maps 0 to vanished; kept for totality.
            return backend == .initialising
                ? .fail(.frontendMissing(path: parentPath(path))) : .vanish
        case .reconfiguring, .reconfigured:
            return .fail(.frontendStateUnsupported(path: path, state: state))
        case .initialising, .initWait:
            switch backend {
            case .initialising, .closed, .connected: return .offerInitWait
            case .initWait, .closing: return .stay
            }
        case .initialised, .connected:
            switch backend {
            case .initialising, .closed:
                return .fail(
                    .frontendStateJump(path: path, frontend: state, backend: backend.xenbusState))
            case .initWait:
                if state == .initialised && trigger == .connected { return .stay }
                return .connect
            case .connected, .closing:
                return .stay
            }
        case .closing:
            switch backend {
            case .initialising: return .offerInitWait
            case .initWait, .connected: return .beginClosing
            case .closing, .closed: return .stay
            }
        case .closed:
            switch backend {
            case .initialising: return .offerInitWait
            case .initWait, .connected, .closing: return .close
            case .closed: return .stay
            }
        }
    }

    /// The first step of a backend process that adopts a device its
    /// predecessor left in `backend` (read from the backend's `state`
    /// node), after Linux's table above except:
    ///
    ///     frontend        backend Connected   Closing
    ///     Initialised     resume              stay
    ///     Connected       resume              stay
    ///
    /// Every other pair takes the ordinary step: a device left in InitWait
    /// connects when the frontend is ready, one whose frontend reset while
    /// the backend was down offers InitWait again, one whose frontend closed
    /// or vanished closes.
    public static func adopt(
        backend: BackendPhase, frontend: FrontendObservation, trigger: FrontendConnectTrigger,
        frontendStatePath path: String
    ) -> LifecycleStep {
        if case .state(let state) = frontend, state == .initialised || state == .connected {
            switch backend {
            case .connected: return .resume
            case .closing: return .stay
            default: break
            }
        }
        return step(backend: backend, frontend: frontend, trigger: trigger, frontendStatePath: path)
    }

    static func parentPath(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return path }
        return String(path[..<slash])
    }
}
