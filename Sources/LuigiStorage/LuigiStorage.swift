import LuigiCore
