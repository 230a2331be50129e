# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake: the file as a
# NUL-terminated C array, so the program carries it and needs no data folder.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from ${IN} by embed.cmake */\nconst unsigned char ${NAME}[] = {\n${bytes}0x00};\n")
