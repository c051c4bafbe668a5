import Testing
import LuigiStorage
