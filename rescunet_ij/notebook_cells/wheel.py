# @title The embedded rescunet-ij wheel (data for the install cell below; do not edit)
"""The wheel of the rescunet-ij that generated this notebook, as base64, installed by the next cell.

`rescunet-ij notebook` wrote it here so the notebook installs exactly that version without a
package index. Empty when the notebook installs PACKAGE_SPEC instead (settings cell).
"""

WHEEL_NAME = ""  # the wheel file name (rescunet_ij-VERSION-py3-none-any.whl)
WHEEL_SHA256 = ""  # checked after decoding
WHEEL_BASE64 = ""
